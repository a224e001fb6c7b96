/* The library dl_host loads: burn_outer -> burn_inner, both out of line; burn_outer(ms) burns
 * `ms` of the calling thread's CPU time in burn_inner (the clock is read about every
 * millisecond, so nearly all the time is in burn_inner's own loop). */
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long burn_inner(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 1000000; i++) sink += i ^ (i >> 3);
    } while (thread_cpu_ns() < until_ns);
    return sink;
}

__attribute__((noinline)) unsigned long burn_outer(unsigned long ms) {
    return burn_inner(thread_cpu_ns() + (long long)ms * NS_PER_MS) + 1;
}
