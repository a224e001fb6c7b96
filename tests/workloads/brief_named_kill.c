/* A named thread shorter than a drain period, then SIGKILL: thread "brief" names itself and
 * burns `ms` (argv[1], default 3) of its CPU time in brief_work(), prints "brief tid=T" on
 * stderr and exits; the main thread joins it, waits `wait_ms` (argv[2], default 500) of wall
 * time, enough for the drain to write the thread's samples as a piece of the open generation,
 * and sends itself SIGKILL with the raw kill system call: no generation ever closes, so what the
 * trace knows of the thread is what the pieces say. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clocks.h"

static volatile unsigned long sink;
static long long burn_ns;

__attribute__((noinline)) static void brief_work(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 10000; i++) sink += i ^ (sink >> 3);
    } while (thread_cpu_ns() < until_ns);
}

static void *brief(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "brief");
    brief_work(burn_ns);
    fprintf(stderr, "brief tid=%ld\n", (long)syscall(SYS_gettid));
    return NULL;
}

int main(int argc, char **argv) {
    burn_ns = ms_to_ns(argc > 1 ? atof(argv[1]) : 3);
    long long wait_ns = ms_to_ns(argc > 2 ? atof(argv[2]) : 500);
    pthread_t thread;
    if (pthread_create(&thread, NULL, brief, NULL) != 0) return 2;
    pthread_join(thread, NULL);
    long long until = monotonic_ns() + wait_ns;
    while (monotonic_ns() < until) usleep(10000);
    syscall(SYS_kill, getpid(), SIGKILL);
    return 1;
}
