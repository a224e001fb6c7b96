/* A thread that computes and waits rarely, as a program reading its files does: burns `ms`
 * (argv[1], default 200) of its CPU time in slices of 10 ms, each followed by a 1 ms nanosleep
 * (one voluntary context switch), then prints slices=N and voluntary_switches=N (its own, from
 * getrusage) on stderr, a line each. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void compute(long long until_ns) {
    while (thread_cpu_ns() < until_ns)
        for (int i = 0; i < 20000; i++) sink += i ^ (sink >> 3);
}

int main(int argc, char **argv) {
    long long total_ns = ms_to_ns(argc > 1 ? atof(argv[1]) : 200);
    int slices = 0;
    while (thread_cpu_ns() < total_ns) {
        compute(thread_cpu_ns() + ms_to_ns(10));
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
        slices++;
    }
    struct rusage usage;
    getrusage(RUSAGE_THREAD, &usage);
    fprintf(stderr, "slices=%d\nvoluntary_switches=%ld\n", slices, usage.ru_nvcsw);
    return 0;
}
