/* Four threads spin forever; the main thread spins too and calls exit(7) under them once it
 * has burned CPU_MS of its own CPU time (default 100) and every spinner has burned at least
 * CPU_MS / 2 of its own (so each of the five threads ran for many sampling periods). */
#include <pthread.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;
static long long spinner_budget_ns;
static int spinners_ready;

static void *spinner(void *arg) {
    (void)arg;
    int counted = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++) sink++;
        if (!counted && thread_cpu_ns() >= spinner_budget_ns) {
            counted = 1;
            __atomic_add_fetch(&spinners_ready, 1, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    long long budget_ns = (argc > 1 ? atoll(argv[1]) : 100) * NS_PER_MS;
    spinner_budget_ns = budget_ns / 2;
    pthread_t thread;
    for (int i = 0; i < 4; i++) pthread_create(&thread, NULL, spinner, NULL);
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i;
    } while (thread_cpu_ns() < budget_ns || __atomic_load_n(&spinners_ready, __ATOMIC_ACQUIRE) < 4);
    exit(7);
}
