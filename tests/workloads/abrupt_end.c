/* Burns `ms` (argv[2]) of CPU time in spin(), prints its thread's CPU time as cpu_ns=N on
 * stderr, then ends without any exit path of libc, as argv[1] says:
 *   exit_group  the raw system call (what Go's os.Exit does), status 7
 *   sigkill     SIGKILL sent to itself with the raw kill system call
 *   exit_group_after_piece  exit_group as soon as the trace file ($SIGTRACE_OUTPUT, %p the pid)
 *               holds samples of the open generation: a piece after a closed generation, or
 *               a spill after the last closed generation (if any), spinning on until it does
 *               (after 60 s of CPU: status 3) */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void spin(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i ^ (i >> 3);
    } while (thread_cpu_ns() < until_ns);
}

/* True when the trace file's complete chunks (docs/FORMAT.md: TAG, LEN u32 LE, PAYLOAD, CRC)
 * hold a generation ('G') followed by at least one piece ('P'), or a spill ('R') after the last
 * generation: the open generation then holds samples drained before the end whatever comes next,
 * unless a generation closes before the caller's next step. */
static int open_generation_in_pieces(const char *pattern) {
    char path[4096];
    const char *at = strstr(pattern, "%p");
    if (!at) return 0;
    snprintf(path, sizeof path, "%.*s%d%s", (int)(at - pattern), pattern, (int)getpid(), at + 2);
    FILE *file = fopen(path, "rb");
    if (!file) return 0;
    static unsigned char bytes[1 << 24];
    size_t size = fread(bytes, 1, sizeof bytes, file);
    fclose(file);
    int generations = 0, pieces_after = 0, spills_after = 0;
    for (size_t pos = 10; pos + 9 <= size;) {
        size_t len = bytes[pos + 1] | bytes[pos + 2] << 8 | bytes[pos + 3] << 16 | (size_t)bytes[pos + 4] << 24;
        if (pos + 9 + len > size) break;
        if (bytes[pos] == 'G') generations++, pieces_after = 0, spills_after = 0;
        if (bytes[pos] == 'P') pieces_after++;
        if (bytes[pos] == 'R') spills_after++;
        pos += 9 + len;
    }
    return (generations > 0 && pieces_after > 0) || spills_after > 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    spin(ms_to_ns(atof(argv[2])));
    if (strcmp(argv[1], "exit_group_after_piece") == 0) {
        const char *pattern = getenv("SIGTRACE_OUTPUT");
        while (!pattern || !open_generation_in_pieces(pattern)) {
            if (thread_cpu_ns() > 60000 * NS_PER_MS) return 3;
            spin(thread_cpu_ns() + 5 * NS_PER_MS);
        }
    }
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    printf("spun\n");
    fflush(stdout);
    if (strcmp(argv[1], "sigkill") == 0) syscall(SYS_kill, getpid(), SIGKILL);
    syscall(SYS_exit_group, 7);
    return 1;
}
