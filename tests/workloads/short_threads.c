/* The same work done by many short threads or by one long one, to compare how a profiler
 * counts them.
 *   short_threads short|long TOTAL_MS UNIT_US [LEAD_US]
 * A unit of work is UNIT_US µs of CPU: a quarter in work_a(), three quarters in work_b().
 * With LEAD_US, each unit thread first runs work_lead() for LEAD_US µs (not part of the unit):
 * work_a is then not the first function of its thread.
 * `short` runs each unit in a thread of its own (created, then joined, one at a time: each
 * lives less than a sampling period when UNIT_US is under it); `long` runs the units one
 * after the other in one thread. Either way units run until TOTAL_MS of CPU was spent in them.
 * Prints on stderr a_ns=N b_ns=N (CPU time inside each function, summed over the units, read
 * from each thread's CPU clock) and threads=N.
 * The work loops are bounded by CLOCK_MONOTONIC, read in user mode (vDSO), not by the thread's
 * CPU clock, a system call: a loop on it spends most of its CPU time in the kernel, where a
 * perf event that excludes the kernel (perf_event_paranoid 2) drops its overflows. A unit
 * preempted gets less CPU; what it got is measured all the same. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"

static volatile unsigned long sink;
static long long unit_ns, lead_ns;

__attribute__((noinline)) static void work_a(long long ns) {
    long long until = monotonic_ns() + ns;
    while (monotonic_ns() < until)
        for (int i = 0; i < 200; i++) sink += i;
}

__attribute__((noinline)) static void work_b(long long ns) {
    long long until = monotonic_ns() + ns;
    while (monotonic_ns() < until)
        for (int i = 0; i < 200; i++) sink ^= i;
}

__attribute__((noinline)) static void work_lead(long long ns) {
    long long until = monotonic_ns() + ns;
    while (monotonic_ns() < until)
        for (int i = 0; i < 200; i++) sink -= i;
}

struct spent { long long a_ns, b_ns; };

static void unit(struct spent *spent) {
    long long start = thread_cpu_ns();
    work_a(unit_ns / 4);
    long long middle = thread_cpu_ns();
    work_b(unit_ns - unit_ns / 4);
    spent->a_ns += middle - start;
    spent->b_ns += thread_cpu_ns() - middle;
}

static void *unit_thread(void *spent) {
    if (lead_ns > 0) work_lead(lead_ns);
    unit(spent);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    long long total_ns = ms_to_ns(atof(argv[2]));
    unit_ns = (long long)(atof(argv[3]) * 1000);
    lead_ns = argc > 4 ? (long long)(atof(argv[4]) * 1000) : 0;
    struct spent spent = {0, 0};
    long threads = 0;
    while (spent.a_ns + spent.b_ns < total_ns) {
        if (!strcmp(argv[1], "short")) {
            pthread_t thread;
            if (pthread_create(&thread, NULL, unit_thread, &spent) != 0) return 3;
            pthread_join(thread, NULL);
            threads++;
        } else {
            unit(&spent);
        }
    }
    fprintf(stderr, "a_ns=%lld\nb_ns=%lld\nthreads=%ld\n", spent.a_ns, spent.b_ns, threads);
    return 0;
}
