/* A thread on a 16 KiB stack burns CPU_MS of its own CPU time (default 200): too little room
 * below it for a DWARF walk. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;
static long long budget_ns;

static void *burn(void *arg) {
    (void)arg;
    do {
        for (unsigned long i = 0; i < 1000000; i++) sink += i;
    } while (thread_cpu_ns() < budget_ns);
    return NULL;
}

int main(int argc, char **argv) {
    budget_ns = (argc > 1 ? atoll(argv[1]) : 200) * NS_PER_MS;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
    pthread_t thread;
    if (pthread_create(&thread, &attr, burn, NULL) != 0) return 1;
    pthread_join(thread, NULL);
    printf("small stack done\n");
    return 0;
}
