/* argv[1] threads fork at once, again and again for argv[2] ms of wall time. Each child burns a
 * little CPU, may fork a grandchild, and ends one of four ways: exit(), _exit(), returning from
 * main's caller chain, or after its own thread's fork. The parent reaps every child and fails
 * (exit 1, with the status printed) if any died of a signal. Before the fix, forked children
 * crashed with SIGSEGV in the sampling handler (1-2 runs in 10). Prints "forks ok". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static double wall_ms;
static long long start;
static volatile int failed;

static void burn_briefly(void) {
    volatile unsigned long sink = 0;
    long long begin = monotonic_ns();
    while (monotonic_ns() - begin < 2 * NS_PER_MS)
        for (int i = 0; i < 1000; i++) sink += i;
}

static int reap(pid_t child) {
    int status = 0;
    if (waitpid(child, &status, 0) != child) return 0;
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "child %d died of signal %d\n", child, WTERMSIG(status));
        return 0;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int child_body(int how) {
    burn_briefly();
    if (how == 3) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            burn_briefly();
            _exit(0);
        }
        if (grandchild > 0 && !reap(grandchild)) _exit(1);
    }
    if (how == 0) exit(0);
    if (how == 1) _exit(0);
    return 0; /* returned through the caller, which exits */
}

static void *forker(void *arg) {
    int how = (int)(size_t)arg;
    while (monotonic_ns() - start < ms_to_ns(wall_ms)) {
        pid_t child = fork();
        if (child == 0) exit(child_body(how++ % 4));
        if (child < 0 || !reap(child)) failed = 1;
        how++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 6;
    wall_ms = argc > 2 ? atof(argv[2]) : 1000;
    start = monotonic_ns();
    pthread_t forkers[64];
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++) pthread_create(&forkers[i], NULL, forker, (void *)(size_t)i);
    for (int i = 0; i < threads; i++) pthread_join(forkers[i], NULL);
    if (failed) {
        printf("a child failed\n");
        return 1;
    }
    printf("forks ok\n");
    return 0;
}
