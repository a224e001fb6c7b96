/* A library whose constructor starts a thread before sigtrace's constructor runs (list it after
 * libsigtrace.so in LD_PRELOAD: the later preload is initialised first). The thread waits
 * (blocked, using no CPU) until the program's main calls early_thread_go() (fault_burn.c does),
 * so that all it burns is after every constructor: CPU time a thread spent before sigtrace
 * armed it is not the trace's, and arming it can wait for the kernel (growing the descriptor
 * table of a multithreaded process waits for an RCU grace period, ~16 ms on this VM). Then it
 * burns EARLY_THREAD_MS of its own CPU time (default 100), prints early_tid=N and
 * early_cpu_ns=N (its CPU time since it was let go) on stderr and ends. The program it is
 * preloaded into must outlive it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clocks.h"

static volatile unsigned long sink;
static sem_t go;

void early_thread_go(void) { sem_post(&go); }

__attribute__((noinline)) static void early_burn(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 20000; i++) sink += i ^ (sink >> 3);
    } while (thread_cpu_ns() < until_ns);
}

static void *early_thread(void *arg) {
    (void)arg;
    const char *ms = getenv("EARLY_THREAD_MS");
    while (sem_wait(&go) != 0) {
    }
    long long start = thread_cpu_ns();
    early_burn(start + ms_to_ns(ms ? atof(ms) : 100));
    fprintf(stderr, "early_tid=%ld\nearly_cpu_ns=%lld\n", (long)syscall(SYS_gettid), thread_cpu_ns() - start);
    return NULL;
}

__attribute__((constructor)) static void start_early_thread(void) {
    pthread_t thread;
    sem_init(&go, 0, 0);
    if (pthread_create(&thread, NULL, early_thread, NULL) == 0) pthread_detach(thread);
}
