/* A server that forks a worker: the main thread serves (a byte ping-ponged with a peer thread
 * over pipes, two context switches per round trip) for SERVE_MS of wall time, then forks a
 * child that computes CHILD_MS of its CPU time and exits with 0; the parent waits for it.
 * Prints `main cpu_ns=N` (the parent's main thread), `child_pid=N` and, from the child,
 * `child cpu_ns=N` on stderr; exits with 0. Usage: serve_then_fork SERVE_MS CHILD_MS */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "clocks.h"
#include "ping_pong.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void child_compute(long long cpu_ns) {
    long long end = thread_cpu_ns() + cpu_ns;
    while (thread_cpu_ns() < end)
        for (int i = 0; i < 10000; i++) sink += (unsigned long)i * i;
}

static void *peer(void *unused) {
    (void)unused;
    ping_pong_peer();
    return NULL;
}

int main(int argc, char **argv) {
    long long serve_ns = ms_to_ns(argc > 1 ? atof(argv[1]) : 300);
    long long child_ns = ms_to_ns(argc > 2 ? atof(argv[2]) : 100);
    if (ping_pong_open()) return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, peer, NULL)) return 1;
    serve(serve_ns);
    if (ping_pong_quit() || pthread_join(thread, NULL)) return 1;
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        child_compute(child_ns);
        fprintf(stderr, "child cpu_ns=%lld\n", thread_cpu_ns());
        exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    fprintf(stderr, "child_pid=%d\nmain cpu_ns=%lld\n", (int)child, thread_cpu_ns());
    return 0;
}
