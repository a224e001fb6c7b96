/* Splits the main thread's CPU time between two functions: work_a() burns PERCENT_A percent
 * (default 30) of each round and work_b() the rest, each measured on the thread's CPU clock, so
 * the shares hold whatever the machine's speed. Runs rounds until CPU_MS (default 400) of CPU
 * is used. Each round's length is drawn at random (2 to 6 ms of CPU): a fixed round would be
 * periodic, and a sampling period close to a simple fraction of it would see a biased share.
 * Prints its CPU time on stderr (cpu_ns=N). */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

/* Each burns CPU until the thread's CPU clock reaches `until_ns`. */
__attribute__((noinline)) void work_a(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 2000; i++) sink += i * i;
    } while (thread_cpu_ns() < until_ns);
}
__attribute__((noinline)) void work_b(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 2000; i++) sink += i ^ (sink >> 2);
    } while (thread_cpu_ns() < until_ns);
}

int main(int argc, char **argv) {
    long long percent_a = argc > 1 ? atoll(argv[1]) : 30;
    long long budget_ns = (argc > 2 ? atoll(argv[2]) : 400) * NS_PER_MS;
    unsigned long state = 0x9e3779b97f4a7c15UL;
    long long now = thread_cpu_ns();
    while (now < budget_ns) {
        state = state * 6364136223846793005UL + 1442695040888963407UL; /* a 64-bit LCG */
        long long round_ns = 2 * NS_PER_MS + (long long)((state >> 33) % (4 * NS_PER_MS));
        work_a(now + round_ns * percent_a / 100);
        work_b(now + round_ns);
        now = thread_cpu_ns();
    }
    printf("shift done %d\n", sink != 0);
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    return 0;
}
