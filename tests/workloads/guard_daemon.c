/* A daemon-style program: four threads burn CPU while the main thread closes every descriptor
 * above 2 (with close() up to RLIMIT_NOFILE, or with argv[2] = "raw" by the close_range system
 * call, which no library call sees), opens eight log files, burns argv[1] ms of CPU, writes
 * known lines and checks that each file holds exactly what it wrote. Before the fix the next
 * generation of the trace was written into whichever log got sigtrace's old number. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static double burn_ms;

static void *burn(void *arg) {
    (void)arg;
    volatile unsigned long sink = 0;
    long long start = thread_cpu_ns();
    while (thread_cpu_ns() - start < ms_to_ns(burn_ms))
        for (int i = 0; i < 20000; i++) sink += i;
    return NULL;
}

static int line(char *out, int k, int i) { return snprintf(out, 64, "line %d of log %d\n", k, i); }

int main(int argc, char **argv) {
    burn_ms = argc > 1 ? atof(argv[1]) : 300;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, burn, NULL);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    if (argc > 2 && strcmp(argv[2], "raw") == 0)
        syscall(SYS_close_range, 3u, ~0u, 0);
    else
        for (long fd = 3; fd < (long)limit.rlim_cur && fd < 65536; fd++) close((int)fd);
    int logs[8];
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof name, "log%d.txt", i);
        logs[i] = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    burn(NULL);
    for (int k = 0; k < 50; k++)
        for (int i = 0; i < 8; i++) {
            char text[64];
            write(logs[i], text, line(text, k, i));
        }
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 8; i++) {
        char name[64], expected[8192] = "", got[8192];
        snprintf(name, sizeof name, "log%d.txt", i);
        for (int k = 0; k < 50; k++) line(expected + strlen(expected), k, i);
        int fd = open(name, O_RDONLY);
        ssize_t size = read(fd, got, sizeof got);
        close(fd);
        if (size != (ssize_t)strlen(expected) || memcmp(got, expected, size) != 0) {
            printf("log%d.txt holds %zd bytes, not the %zu written\n", i, size, strlen(expected));
            return 1;
        }
    }
    printf("logs intact\n");
    return 0;
}
