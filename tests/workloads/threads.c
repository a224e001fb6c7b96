/* N busy threads (default 32); thread i does (1 + i % 4) units of work, so their CPU shares
 * differ. Each thread prints "thread tid=T cpu_ns=N" on stderr when done. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static unsigned long units;

__attribute__((noinline)) static unsigned long burn(unsigned long n) {
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < n; i++) x += i ^ (x >> 3);
    return x;
}

static void *worker(void *arg) {
    long index = (long)arg;
    burn(units * (1 + index % 4));
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    fprintf(stderr, "thread tid=%ld cpu_ns=%lld\n", (long)syscall(SYS_gettid), (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    return NULL;
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 32;
    units = argc > 2 ? strtoul(argv[2], 0, 10) : 4000000;
    pthread_t threads[1024];
    for (long i = 0; i < count && i < 1024; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    for (long i = 0; i < count && i < 1024; i++) pthread_join(threads[i], NULL);
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("threads done %d\n", count);
    fprintf(stderr, "cpu_ns=%lld\n", (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    return 0;
}
