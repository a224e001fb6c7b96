/* argv[1] waves of argv[2] threads started at once, each burning argv[3] ms of its own CPU
 * time. With the perf timer's first overflow inside the enabling ioctl, a thread lost its
 * period and spent its life taking signals (a hang in about 1 run of 8). Prints "ok" and the
 * process CPU time as cpu_ns=N on stderr. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clocks.h"

static double burn_ms;

static void *burn(void *arg) {
    (void)arg;
    volatile unsigned long sink = 0;
    long long start = thread_cpu_ns();
    while (thread_cpu_ns() - start < ms_to_ns(burn_ms))
        for (int i = 0; i < 20000; i++) sink += i;
    return NULL;
}

int main(int argc, char **argv) {
    int waves = argc > 1 ? atoi(argv[1]) : 3, count = argc > 2 ? atoi(argv[2]) : 32;
    burn_ms = argc > 3 ? atof(argv[3]) : 50;
    pthread_t threads[256];
    if (count > 256) count = 256;
    for (int wave = 0; wave < waves; wave++) {
        for (int i = 0; i < count; i++) pthread_create(&threads[i], NULL, burn, NULL);
        for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
    }
    printf("ok\n");
    fprintf(stderr, "cpu_ns=%lld\n", process_cpu_ns());
    return 0;
}
