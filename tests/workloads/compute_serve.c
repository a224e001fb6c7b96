/* A thread whose behaviour changes: the main thread computes for COMPUTE_MS of its CPU time,
 * then serves (a byte ping-ponged with a peer thread over pipes, two context switches per round
 * trip) for SERVE_MS of wall time, then computes again for COMPUTE_MS. The peer only serves.
 * Prints each thread's CPU time on stderr (`main cpu_ns=N`, `peer cpu_ns=N`) and the main
 * thread's CPU time in each phase (`phase1_ns=`, `phase2_ns=`, `phase3_ns=`); exits with 0.
 * Usage: compute_serve COMPUTE_MS SERVE_MS */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "clocks.h"
#include "ping_pong.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void compute(long long cpu_ns) {
    long long end = thread_cpu_ns() + cpu_ns;
    while (thread_cpu_ns() < end)
        for (int i = 0; i < 10000; i++) sink += (unsigned long)i * i;
}

static void *peer(void *unused) {
    (void)unused;
    ping_pong_peer();
    fprintf(stderr, "peer cpu_ns=%lld\n", thread_cpu_ns());
    return NULL;
}

int main(int argc, char **argv) {
    long long compute_ns = ms_to_ns(argc > 1 ? atof(argv[1]) : 300);
    long long serve_ns = ms_to_ns(argc > 2 ? atof(argv[2]) : 300);
    if (ping_pong_open()) return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, peer, NULL)) return 1;
    long long start = thread_cpu_ns();
    compute(compute_ns);
    long long after_compute = thread_cpu_ns();
    serve(serve_ns);
    long long after_serve = thread_cpu_ns();
    compute(compute_ns);
    long long end = thread_cpu_ns();
    if (ping_pong_quit()) return 1;
    pthread_join(thread, NULL);
    fprintf(stderr, "phase1_ns=%lld\nphase2_ns=%lld\nphase3_ns=%lld\n", after_compute - start, after_serve - after_compute, end - after_serve);
    fprintf(stderr, "main cpu_ns=%lld\n", end);
    printf("compute_serve done %d\n", sink != 0);
    return 0;
}
