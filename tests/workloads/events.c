/* Events on two threads and, with the argument "fork", a second process, in an order fixed by
 * handshakes (tests/tests/integration/commands/events.rs checks it):
 *   main:   log main "start"; starts worker "ev-worker"
 *   worker: region "outer" begins, log worker "inside", region "inner" begins; tells main
 *   main:   region "main-work" begins, burns 20 ms of its CPU time, log main "worker is inside";
 *           region "main-work" ends; tells worker
 *   worker: burns 20 ms of its CPU time; region "inner" ends, region "outer" ends; exits
 *   main:   joins; with "fork": a child logs child "hello", burns 10 ms and exits, main waits
 *           and logs main "child done"; last, log main "done".
 * Region ends of the two threads interleave with each other's begins, so an end is only named
 * right when open regions are tracked per thread. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sigtrace.h"
#include "clocks.h"

static volatile unsigned long sink;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stage;

/* Burns `ms` of the calling thread's CPU time. */
__attribute__((noinline)) static void burn(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i;
    } while (thread_cpu_ns() < until);
}

static void advance_to(int next) {
    pthread_mutex_lock(&lock);
    stage = next;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void wait_for(int wanted) {
    pthread_mutex_lock(&lock);
    while (stage < wanted) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void *worker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "ev-worker");
    SIGTRACE_REGION_BEGIN("outer");
    SIGTRACE_LOG("worker", "inside");
    SIGTRACE_REGION_BEGIN("inner");
    advance_to(1);
    wait_for(2);
    burn(20);
    SIGTRACE_REGION_END();
    SIGTRACE_REGION_END();
    return NULL;
}

int main(int argc, char **argv) {
    SIGTRACE_LOG("main", "start");
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    wait_for(1);
    SIGTRACE_REGION_BEGIN("main-work");
    burn(20);
    SIGTRACE_LOG("main", "worker is inside");
    SIGTRACE_REGION_END();
    advance_to(2);
    pthread_join(thread, NULL);
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        pid_t child = fork();
        if (child == 0) {
            SIGTRACE_LOG("child", "hello");
            burn(10);
            exit(0);
        }
        waitpid(child, NULL, 0);
        SIGTRACE_LOG("main", "child done");
    }
    SIGTRACE_LOG("main", "done");
    printf("events done\n");
    return 0;
}
