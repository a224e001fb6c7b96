/* Clocks that size the workloads: every workload burns a stated amount of CPU (or wall) time,
 * read from the kernel's clocks, never an iteration count tuned to one machine. Included by the
 * workloads (gcc finds it next to them); header-only, static inline, so it adds no frames of its
 * own to the stacks the tests look for. */
#ifndef SIGTRACE_TEST_CLOCKS_H
#define SIGTRACE_TEST_CLOCKS_H

#include <time.h>

#define NS_PER_MS 1000000LL

/* `ms` (an argument read with atof) in ns. */
static inline long long ms_to_ns(double ms) { return (long long)(ms * NS_PER_MS); }

/* `clock` now, in ns. */
static inline long long clock_now_ns(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* CPU time of the calling thread, ns. */
static inline long long thread_cpu_ns(void) { return clock_now_ns(CLOCK_THREAD_CPUTIME_ID); }

/* CPU time of the whole process (all its threads, sigtrace's own included), ns. */
static inline long long process_cpu_ns(void) { return clock_now_ns(CLOCK_PROCESS_CPUTIME_ID); }

/* CLOCK_MONOTONIC, ns. */
static inline long long monotonic_ns(void) { return clock_now_ns(CLOCK_MONOTONIC); }

#endif
