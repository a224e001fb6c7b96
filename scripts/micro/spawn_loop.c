/* Starts a program N times in a row (posix_spawn, then wait4) and prints the median CPU time
   (user + sys of each child, from its rusage) and the median wall time of a start, for issue
   19's process start and exit rows: run it bare and with LD_PRELOAD set (the variable reaches
   every child). Medians, not means: on a shared VM a start now and then is preempted for a
   whole time slice (4 ms here), which would move a mean of 20 starts of a 10 ms program by more
   than the cost measured.

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

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n) {
    qsort(values, n, sizeof *values, by_value);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: spawn_loop N PROGRAM [ARG...]\n"); return 2; }
    int n = atoi(argv[1]);
    if (n < 1) { fprintf(stderr, "spawn_loop: N must be at least 1\n"); return 2; }
    double *cpu = malloc(n * sizeof *cpu), *wall = malloc(n * sizeof *wall);
    if (!cpu || !wall) { perror("malloc"); return 1; }
    for (int i = 0; i < n; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t pid;
        if (posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ)) { perror("posix_spawn"); return 1; }
        int status;
        struct rusage usage;
        if (wait4(pid, &status, 0, &usage) != pid) { perror("wait4"); return 1; }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cpu[i] = seconds(usage.ru_utime) + seconds(usage.ru_stime);
        wall[i] = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    }
    const char *label = getenv("LABEL");
    printf("%s: %.1f us/run CPU, %.1f us/run wall\n", label ? label : "run", median(cpu, n) * 1e6, median(wall, n) * 1e6);
    return 0;
}
