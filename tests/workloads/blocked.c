/* A thread blocks in read() on a pipe and then in a 300 ms nanosleep while the main thread
 * burns CPU: CPU_MS (default 300) of its own CPU time before it writes to the pipe, a third of
 * that after. Any EINTR seen by the blocked thread is printed; it prints its tid as
 * "sleeper tid=T"; the main thread prints "main tid=T cpu_ns=N" (its CPU time) at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "clocks.h"

static int fds[2];

static void *sleeper(void *arg) {
    (void)arg;
    fprintf(stderr, "sleeper tid=%ld\n", (long)syscall(SYS_gettid));
    char byte;
    ssize_t got = read(fds[0], &byte, 1);
    if (got < 0) printf("read failed: %s\n", strerror(errno));
    struct timespec nap = {0, 300 * 1000 * 1000}, left;
    if (nanosleep(&nap, &left) != 0) printf("nanosleep failed: %s\n", strerror(errno));
    return NULL;
}

/* Burns CPU for `ms` of the calling thread's CPU time. */
__attribute__((noinline)) static unsigned long burn(long long ms) {
    volatile unsigned long x = 0;
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) x += i * 7;
    } while (thread_cpu_ns() < until);
    return x;
}

int main(int argc, char **argv) {
    long long budget_ms = argc > 1 ? atoll(argv[1]) : 300;
    if (pipe(fds) != 0) return 1;
    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, NULL);
    burn(budget_ms);
    if (write(fds[1], "x", 1) != 1) return 1;
    burn(budget_ms / 3);
    pthread_join(thread, NULL);
    fprintf(stderr, "main tid=%ld cpu_ns=%lld\n", (long)syscall(SYS_gettid), thread_cpu_ns());
    printf("blocked done\n");
    return 0;
}
