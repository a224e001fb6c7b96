/* A timeline for the Firefox Profiler export: the main thread logs "timeline start" (category
 * "app"), starts two workers named "fx-alpha" and "fx-beta" and joins them. fx-alpha burns
 * WORKER_MS (argv[1], default 100) of its CPU time in alpha_work() inside the region "outer",
 * the second half of it inside the nested region "inner"; fx-beta burns WORKER_MS in
 * beta_work() outside any region. Each thread prints "tid=T cpu_ns=N" (its CPU time) on stderr. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "sigtrace.h"
#include "clocks.h"

static volatile unsigned long sink;
static long long worker_ms = 100;

/* Each burns `ms` of the calling thread's CPU time. */
__attribute__((noinline)) static void alpha_work(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i;
    } while (thread_cpu_ns() < until);
}
__attribute__((noinline)) static void beta_work(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i * 7;
    } while (thread_cpu_ns() < until);
}

static void report_cpu(void) {
    fprintf(stderr, "tid=%ld cpu_ns=%lld\n", (long)syscall(SYS_gettid), thread_cpu_ns());
}

static void *alpha(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "fx-alpha");
    SIGTRACE_REGION_BEGIN("outer");
    alpha_work(worker_ms / 2);
    SIGTRACE_REGION_BEGIN("inner");
    alpha_work(worker_ms - worker_ms / 2);
    SIGTRACE_REGION_END();
    SIGTRACE_REGION_END();
    report_cpu();
    return NULL;
}

static void *beta(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "fx-beta");
    beta_work(worker_ms);
    report_cpu();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) worker_ms = atoll(argv[1]);
    SIGTRACE_LOG("app", "timeline start");
    pthread_t threads[2];
    pthread_create(&threads[0], NULL, alpha, NULL);
    pthread_create(&threads[1], NULL, beta, NULL);
    pthread_join(threads[0], NULL);
    pthread_join(threads[1], NULL);
    report_cpu();
    printf("timeline done\n");
    return 0;
}
