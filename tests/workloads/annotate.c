/* Uses the annotation API (through sigtrace.h, so it also runs without sigtrace): a log
 * message, a "hot" region around hot_work() and a "cold" one around cold_work(), a named
 * worker thread; with the argument "crash" it logs a last message and aborts. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sigtrace.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void hot_work(unsigned long n) { for (unsigned long i = 0; i < n; i++) sink += i; }
__attribute__((noinline)) static void cold_work(unsigned long n) { for (unsigned long i = 0; i < n; i++) sink += i * 5; }

static void *worker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "named-worker");
    hot_work(100000000UL);
    return NULL;
}

int main(int argc, char **argv) {
    SIGTRACE_LOG("app", "starting");
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    pthread_join(thread, NULL);
    SIGTRACE_REGION_BEGIN("hot");
    hot_work(300000000UL);
    SIGTRACE_REGION_END();
    SIGTRACE_REGION_BEGIN("cold");
    cold_work(200000000UL);
    SIGTRACE_REGION_END();
    if (argc > 1 && !strcmp(argv[1], "crash")) {
        SIGTRACE_LOG("app", "about to crash");
        abort();
    }
    printf("annotate done\n");
    return 0;
}
