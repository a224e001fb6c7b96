/* Two named threads burn CPU in distinct functions: "alpha" burns UNIT_MS (default 100) of its
 * own CPU time in alpha_work(), "beta" burns 3 × UNIT_MS in beta_work(), so beta holds 75% of
 * the sampled CPU time; the main thread only waits. Each thread prints "<name> tid=T cpu_ns=N"
 * on stderr when done. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "clocks.h"

static volatile unsigned long sink;
static long long unit_ns;

/* Each burns CPU until the calling thread's CPU clock reaches `until_ns`. */
__attribute__((noinline)) static void alpha_work(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 10000; i++) sink += i ^ (sink >> 3);
    } while (thread_cpu_ns() < until_ns);
}
__attribute__((noinline)) static void beta_work(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 10000; i++) sink += i * 7 + (sink >> 5);
    } while (thread_cpu_ns() < until_ns);
}

static void *worker(void *arg) {
    int is_beta = arg != NULL;
    const char *name = is_beta ? "beta" : "alpha";
    pthread_setname_np(pthread_self(), name);
    if (is_beta)
        beta_work(3 * unit_ns);
    else
        alpha_work(unit_ns);
    fprintf(stderr, "%s tid=%ld cpu_ns=%lld\n", name, (long)syscall(SYS_gettid), thread_cpu_ns());
    return NULL;
}

int main(int argc, char **argv) {
    unit_ns = (argc > 1 ? atoll(argv[1]) : 100) * NS_PER_MS;
    pthread_t alpha, beta;
    pthread_create(&alpha, NULL, worker, NULL);
    pthread_create(&beta, NULL, worker, (void *)1);
    pthread_join(alpha, NULL);
    pthread_join(beta, NULL);
    printf("named threads done\n");
    return 0;
}
