/* Burns `ms` (argv[2]) of CPU time in spin(), prints its thread's CPU time as cpu_ns=N on
 * stderr, then ends without any exit path of libc, as argv[1] says:
 *   exit_group  the raw system call (what Go's os.Exit does), status 7
 *   sigkill     SIGKILL sent to itself with the raw kill system call */
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

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    spin(ms_to_ns(atof(argv[2])));
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    printf("spun\n");
    fflush(stdout);
    if (strcmp(argv[1], "sigkill") == 0) syscall(SYS_kill, getpid(), SIGKILL);
    syscall(SYS_exit_group, 7);
    return 1;
}
