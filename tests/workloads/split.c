/* Two callers share one leaf (which sets up no frame, even with -fno-omit-frame-pointer):
 * heavy() does 3 units of spin() per round, light() does 1, so heavy's share of CPU is 75%.
 * Runs whole rounds until the main thread has burned CPU_MS of CPU (default 300; the clock is
 * read between rounds, so the 3:1 ratio holds exactly), so its wall time is at least CPU_MS.
 * Each round's length is drawn at random (50 000 to 150 000 units): a fixed round would be
 * periodic, and a sampling period close to a simple fraction of it would see only a few of
 * its phases and a biased share.
 * Prints the main thread's CPU time on stderr (cpu_ns=N; the only thread sigtrace samples),
 * exits with 3. */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void spin(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) sink += i * i;
}
/* The increments after the calls keep gcc from turning them into tail jumps. */
__attribute__((noinline)) void heavy(unsigned long n) { spin(3 * n); sink++; }
__attribute__((noinline)) void light(unsigned long n) { spin(n); sink++; }

int main(int argc, char **argv) {
    long long budget_ns = (argc > 1 ? atoll(argv[1]) : 300) * NS_PER_MS;
    unsigned long state = 0x9e3779b97f4a7c15UL;
    do {
        state = state * 6364136223846793005UL + 1442695040888963407UL; /* a 64-bit LCG */
        unsigned long units = 50000 + (state >> 33) % 100000;
        heavy(units);
        light(units);
    } while (thread_cpu_ns() < budget_ns);
    long long cpu = thread_cpu_ns();
    printf("split done %d\n", sink != 0);
    fprintf(stderr, "cpu_ns=%lld\n", cpu);
    return 3;
}
