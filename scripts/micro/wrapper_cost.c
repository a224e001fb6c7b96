/* The cost of one call through sigtrace's interposed blocking functions (issue 13).

     wrapper_cost read MS [alone]    read(fd of /dev/zero, buf, 1) in a loop for MS ms of wall time
     wrapper_cost mutex MS [alone]   an uncontended pthread_mutex_lock/unlock pair in a loop

   Run it without the shim, and under LD_PRELOAD=libsigtrace.so with SIGTRACE_MODE=cpu or wall:
   the difference in ns per call is the wrapper's. The loop is sized by wall time (the clock is
   read every 1024 calls, ~0.02 ns a call); ns per call are the looping thread's CPU time (user
   and system) per call, which a busy machine's preemptions leave out, and its wall time per
   call. The calls go through the PLT, as a program's do.

   A second thread, idle in read() on a pipe, runs beside the loop unless "alone" is given: libc
   takes other paths in a multi-threaded process (read() enables and disables asynchronous
   cancellation around the system call), and a traced process always has sigtrace's own thread.
   Prints "NAME: N calls in S s, X ns/call CPU, Y ns/call wall". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int pipe_fds[2];

static void *idle(void *arg) {
    (void)arg;
    char byte;
    while (read(pipe_fds[0], &byte, 1) > 0) {
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (strcmp(argv[1], "read") && strcmp(argv[1], "mutex")) || (argc == 4 && strcmp(argv[3], "alone"))) {
        fprintf(stderr, "usage: %s read|mutex MS [alone]\n", argv[0]);
        return 2;
    }
    int reading = !strcmp(argv[1], "read");
    double seconds = atof(argv[2]) / 1e3;
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0 || pipe(pipe_fds) != 0) return 1;
    pthread_t idler;
    if (argc == 3 && pthread_create(&idler, NULL, idle, NULL) != 0) return 1;
    char byte;
    long calls = 0;
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID), start = clock_s(CLOCK_MONOTONIC), end = start + seconds, now;
    do {
        if (reading) {
            for (int i = 0; i < 1024; i++)
                if (read(fd, &byte, 1) != 1) return 1;
        } else {
            for (int i = 0; i < 1024; i++) {
                pthread_mutex_lock(&lock);
                pthread_mutex_unlock(&lock);
            }
        }
        calls += 1024;
        now = clock_s(CLOCK_MONOTONIC);
    } while (now < end);
    cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu;
    close(pipe_fds[1]);
    if (argc == 3) pthread_join(idler, NULL);
    printf("%s: %ld calls in %.3f s, %.2f ns/call CPU, %.2f ns/call wall\n", argv[1], calls, now - start, cpu / calls * 1e9, (now - start) / calls * 1e9);
    return 0;
}
