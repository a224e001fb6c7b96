/* Reads CLOCK_MONOTONIC (a vDSO call) in a hot loop until the thread has burned CPU_MS of CPU
 * time (default 300; the thread's CPU clock, a system call, is read once per 4096 vDSO calls):
 * most samples land in the vDSO's clock_gettime. Prints its CPU time (cpu_ns=N) on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

__attribute__((noinline)) static long read_clocks(long long until_ns) {
    struct timespec now;
    long sum = 0;
    do {
        for (int i = 0; i < 4096; i++) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            sum += now.tv_nsec & 1;
        }
    } while (thread_cpu_ns() < until_ns);
    return sum;
}

int main(int argc, char **argv) {
    long long budget_ms = argc > 1 ? atoll(argv[1]) : 300;
    printf("vdso done %d\n", read_clocks(budget_ms * NS_PER_MS) >= 0);
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    return 0;
}
