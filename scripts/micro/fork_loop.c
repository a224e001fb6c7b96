/* A server that forks a child per connection, reduced to its lifecycle (issue 19): the parent
   forks N children one after another; each computes ~0.3 ms of CPU, waits once in poll (1 ms),
   and ends with exit(). Prints the children's CPU time, the parent's, and the wall time per
   fork (getrusage). Run it bare and with LD_PRELOAD set.

     fork_loop N */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t clock) { struct timespec t; clock_gettime(clock, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(struct rusage r) { return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fork_loop N\n"); return 2; }
    int n = atoi(argv[1]);
    double start = now(CLOCK_MONOTONIC);
    for (int i = 0; i < n; i++) {
        pid_t child = fork();
        if (child == 0) {
            double t0 = now(CLOCK_THREAD_CPUTIME_ID);
            volatile double x = 0;
            while (now(CLOCK_THREAD_CPUTIME_ID) - t0 < 0.0003) x += 1;
            poll(NULL, 0, 1);
            exit(0);
        }
        if (child < 0) { perror("fork"); return 1; }
        waitpid(child, NULL, 0);
    }
    struct rusage children, self;
    getrusage(RUSAGE_CHILDREN, &children);
    getrusage(RUSAGE_SELF, &self);
    printf("%.1f us/fork children CPU, %.1f us/fork parent CPU, %.1f us/fork wall\n", cpu(children) / n * 1e6, cpu(self) / n * 1e6,
           (now(CLOCK_MONOTONIC) - start) / n * 1e6);
    return 0;
}
