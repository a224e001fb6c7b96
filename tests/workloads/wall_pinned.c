/* Two threads pinned to one CPU (the first the process may use), each burning CPU in
 * burn_on_cpu0() for argv[1] ms of wall time: each runs about half the time and waits for the
 * CPU (runnable) the other half. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clocks.h"

static double run_ms;
static volatile unsigned long sink;

__attribute__((noinline)) static void burn_on_cpu0(long long end_ns) {
    while (monotonic_ns() < end_ns)
        for (int i = 0; i < 1000; i++) sink += i;
}

static void *burner(void *arg) {
    pthread_setname_np(pthread_self(), (const char *)arg);
    cpu_set_t allowed, one;
    int first = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        while (first < CPU_SETSIZE - 1 && !CPU_ISSET(first, &allowed)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) perror("sched_setaffinity");
    burn_on_cpu0(monotonic_ns() + ms_to_ns(run_ms));
    return NULL;
}

int main(int argc, char **argv) {
    run_ms = argc > 1 ? atof(argv[1]) : 1000;
    pthread_t threads[2];
    pthread_create(&threads[0], NULL, burner, "burner_a");
    pthread_create(&threads[1], NULL, burner, "burner_b");
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    puts("done");
    return 0;
}
