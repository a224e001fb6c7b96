/* Starts a program N times in a row (posix_spawn, then waitpid) and prints the CPU time (user +
   sys of the children, from getrusage) and the wall time per start, for issue 19's process
   start and exit rows: run it bare and with LD_PRELOAD set (the variable reaches every child).

     spawn_loop N PROGRAM [ARG...]

   Prints "LABEL: X us/run CPU, Y us/run wall", LABEL from the environment (default "run"). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: spawn_loop N PROGRAM [ARG...]\n"); return 2; }
    int n = atoi(argv[1]);
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        if (posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ)) { perror("posix_spawn"); return 1; }
        int status;
        waitpid(pid, &status, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_CHILDREN, &after);
    double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_stime);
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    const char *label = getenv("LABEL");
    printf("%s: %.1f us/run CPU, %.1f us/run wall\n", label ? label : "run", cpu * 1e6 / n, wall * 1e6 / n);
    return 0;
}
