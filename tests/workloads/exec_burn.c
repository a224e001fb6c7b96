/* A process whose second image starts with CPU time already spent by the first:
 *   exec_burn first MS_FIRST MS_SECOND   burns MS_FIRST ms of CPU, then execs itself as
 *                                        "second MS_SECOND"
 *   exec_burn second MS                  burns MS ms of CPU and prints, on stderr, the
 *                                        process's CPU time when its main began
 *                                        (image_start_cpu_ns=N) and at its end (cpu_ns=N) */
#include "clocks.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void burn(double ms) {
    long long until = thread_cpu_ns() + ms_to_ns(ms);
    while (thread_cpu_ns() < until)
        for (unsigned long i = 0; i < 100000; i++) sink += i ^ (i >> 3);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "first") == 0) {
        burn(atof(argv[2]));
        execl("/proc/self/exe", argv[0], "second", argv[3], (char *)NULL);
        return 3;
    }
    if (argc != 3 || strcmp(argv[1], "second") != 0) return 2;
    long long start = process_cpu_ns();
    burn(atof(argv[2]));
    fprintf(stderr, "image_start_cpu_ns=%lld\ncpu_ns=%lld\n", start, process_cpu_ns());
    return 0;
}
