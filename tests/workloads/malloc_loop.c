/* Allocates and frees in a hot loop on two threads, so samples land inside malloc and free. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile escape; /* keeps the compiler from eliding the allocations */

static void *churn(void *arg) {
    unsigned long rounds = (unsigned long)arg, total = 0;
    for (unsigned long i = 0; i < rounds; i++) {
        char *p = malloc(16 + (i % 512));
        memset(p, (int)i, 16);
        escape = p;
        total += ((char *)escape)[3];
        free(p);
    }
    return (void *)total;
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 20000000UL;
    pthread_t thread;
    pthread_create(&thread, NULL, churn, (void *)rounds);
    churn((void *)rounds);
    pthread_join(thread, NULL);
    printf("malloc_loop done\n");
    return 0;
}
