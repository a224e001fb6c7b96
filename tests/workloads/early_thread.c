/* A library whose constructor starts a thread before sigtrace's constructor runs (list it after
 * libsigtrace.so in LD_PRELOAD: the later preload is initialised first). The thread burns
 * EARLY_THREAD_MS of its own CPU time (default 100), then prints early_tid=N and
 * early_cpu_ns=N on stderr and ends. The program it is preloaded into must outlive it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void early_burn(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 20000; i++) sink += i ^ (sink >> 3);
    } while (thread_cpu_ns() < until_ns);
}

static void *early_thread(void *arg) {
    (void)arg;
    const char *ms = getenv("EARLY_THREAD_MS");
    early_burn(ms_to_ns(ms ? atof(ms) : 100));
    fprintf(stderr, "early_tid=%ld\nearly_cpu_ns=%lld\n", (long)syscall(SYS_gettid), thread_cpu_ns());
    return NULL;
}

__attribute__((constructor)) static void start_early_thread(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, early_thread, NULL) == 0) pthread_detach(thread);
}
