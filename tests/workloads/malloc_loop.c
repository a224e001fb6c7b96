/* Allocates and frees in a hot loop on two threads (main and one more), each for CPU_MS of its
 * own CPU time (default 250 ms), so samples land inside malloc and free. Each thread prints
 * "thread tid=T cpu_ns=N" and the process prints "rounds=N" (malloc+free pairs, both threads)
 * on stderr. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "clocks.h"

static void *volatile escape; /* keeps the compiler from eliding the allocations */
static long long budget_ns;
static unsigned long total_rounds;

static void *churn(void *arg) {
    (void)arg;
    unsigned long rounds = 0, total = 0;
    do {
        for (unsigned long i = 0; i < 4096; i++, rounds++) {
            char *p = malloc(16 + (rounds % 512));
            memset(p, (int)rounds, 16);
            escape = p;
            total += ((char *)escape)[3];
            free(p);
        }
    } while (thread_cpu_ns() < budget_ns);
    __atomic_add_fetch(&total_rounds, rounds, __ATOMIC_RELAXED);
    fprintf(stderr, "thread tid=%ld cpu_ns=%lld\n", (long)syscall(SYS_gettid), thread_cpu_ns());
    return (void *)total;
}

int main(int argc, char **argv) {
    budget_ns = (argc > 1 ? atoll(argv[1]) : 250) * NS_PER_MS;
    pthread_t thread;
    pthread_create(&thread, NULL, churn, NULL);
    churn(NULL);
    pthread_join(thread, NULL);
    fprintf(stderr, "rounds=%lu\n", total_rounds);
    printf("malloc_loop done\n");
    return 0;
}
