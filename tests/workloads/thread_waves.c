/* Creates and joins THREADS (default 10000) short-lived threads in waves of 64, each burning
 * THREAD_US of its own CPU time (default 200 µs), then prints its peak RSS (VmHWM, kB) on
 * stderr. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clocks.h"

static volatile unsigned long sink;
static long long thread_ns;

static void *work(void *arg) {
    (void)arg;
    do {
        for (unsigned long i = 0; i < 20000; i++) sink += i;
    } while (thread_cpu_ns() < thread_ns);
    return NULL;
}

int main(int argc, char **argv) {
    int total = argc > 1 ? atoi(argv[1]) : 10000;
    thread_ns = (argc > 2 ? atoll(argv[2]) : 200) * 1000LL;
    pthread_t wave[64];
    for (int done = 0; done < total; done += 64) {
        int n = total - done < 64 ? total - done : 64;
        for (int i = 0; i < n; i++)
            if (pthread_create(&wave[i], NULL, work, NULL) != 0) return 1;
        for (int i = 0; i < n; i++) pthread_join(wave[i], NULL);
    }
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    while (status && fgets(line, sizeof line, status))
        if (!strncmp(line, "VmHWM:", 6)) fprintf(stderr, "peak_rss_kb=%ld\n", strtol(line + 6, NULL, 10));
    printf("waves done %d\n", total);
    return 0;
}
