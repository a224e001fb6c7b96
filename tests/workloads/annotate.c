/* Uses the annotation API (through sigtrace.h, so it also runs without sigtrace): a log
 * message, a "hot" region around hot_work() and a "cold" one around cold_work(), a named
 * worker thread; with the argument "crash" it logs a last message and aborts. The worker burns
 * 50 ms of its CPU time in hot_work(); the main thread 100 ms in hot_work() inside "hot", then
 * 100 ms in cold_work() inside "cold" (at 999 Hz ~100 samples in each region). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sigtrace.h"
#include "clocks.h"

static volatile unsigned long sink;

/* Each burns `ms` of the calling thread's CPU time. */
__attribute__((noinline)) static void hot_work(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i;
    } while (thread_cpu_ns() < until);
}
__attribute__((noinline)) static void cold_work(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i * 5;
    } while (thread_cpu_ns() < until);
}

static void *worker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "named-worker");
    hot_work(50);
    return NULL;
}

int main(int argc, char **argv) {
    SIGTRACE_LOG("app", "starting");
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    pthread_join(thread, NULL);
    SIGTRACE_REGION_BEGIN("hot");
    hot_work(100);
    SIGTRACE_REGION_END();
    SIGTRACE_REGION_BEGIN("cold");
    cold_work(100);
    SIGTRACE_REGION_END();
    if (argc > 1 && !strcmp(argv[1], "crash")) {
        SIGTRACE_LOG("app", "about to crash");
        abort();
    }
    printf("annotate done\n");
    return 0;
}
