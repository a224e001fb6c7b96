/* N busy threads (default 32); thread i burns (1 + i % 4) × UNIT_MS of its own CPU time
 * (default 20 ms, measured with CLOCK_THREAD_CPUTIME_ID), so their CPU shares differ. Each
 * thread prints "thread tid=T cpu_ns=N" on stderr when done, and "started tid=T cpu_ns=N" with
 * the CPU time it had used when its start routine began; the process prints its CPU time
 * (cpu_ns=N) at the end. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "clocks.h"

static long long unit_ns;

/* Burns CPU until the calling thread's CPU clock reaches `until_ns`. */
__attribute__((noinline)) static unsigned long burn(long long until_ns) {
    volatile unsigned long x = 0;
    do {
        for (unsigned long i = 0; i < 10000; i++) x += i ^ (x >> 3);
    } while (thread_cpu_ns() < until_ns);
    return x;
}

static void *worker(void *arg) {
    long long started = thread_cpu_ns();
    long index = (long)arg;
    burn(unit_ns * (1 + index % 4));
    long tid = (long)syscall(SYS_gettid);
    fprintf(stderr, "thread tid=%ld cpu_ns=%lld\nstarted tid=%ld cpu_ns=%lld\n", tid, thread_cpu_ns(), tid, started);
    return NULL;
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 32;
    unit_ns = (argc > 2 ? atoll(argv[2]) : 20) * NS_PER_MS;
    pthread_t threads[1024];
    for (long i = 0; i < count && i < 1024; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    for (long i = 0; i < count && i < 1024; i++) pthread_join(threads[i], NULL);
    printf("threads done %d\n", count);
    fprintf(stderr, "cpu_ns=%lld\n", process_cpu_ns());
    return 0;
}
