/* One thread burns CPU_MS of its CPU time (default 3000) and, about every 5 ms of it, prints
 * `at unix_ns=N cpu_ns=C` on stderr: its CPU clock against the wall clock, from which a test
 * reads the CPU time the thread spent between any two moments. Prints `window_burn done`. */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void burn_step(long long until_ns) {
    while (thread_cpu_ns() < until_ns)
        for (int i = 0; i < 20000; i++) sink += i ^ (sink >> 3);
}

int main(int argc, char **argv) {
    long long budget_ns = (argc > 1 ? atoll(argv[1]) : 3000) * NS_PER_MS;
    long long cpu;
    fprintf(stderr, "at unix_ns=%lld cpu_ns=%lld\n", clock_now_ns(CLOCK_REALTIME), thread_cpu_ns());
    while ((cpu = thread_cpu_ns()) < budget_ns) {
        burn_step(cpu + 5 * NS_PER_MS);
        fprintf(stderr, "at unix_ns=%lld cpu_ns=%lld\n", clock_now_ns(CLOCK_REALTIME), thread_cpu_ns());
    }
    printf("window_burn done\n");
    return 0;
}
