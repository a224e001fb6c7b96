/* Many idle threads, for the cost of wall-clock mode's sampler (issue 13).

     idle_threads cond|read|sleep N MS

   Starts N threads that block for MS ms of wall time: in pthread_cond_wait (cond), in read()
   on a pipe nobody writes to (read), or in a loop of 50 ms nanosleeps (sleep); the main thread
   waits in nanosleep meanwhile. Then wakes them (a broadcast, the pipe's write end closed, a
   flag) and joins them. Thread stacks are 256 KiB, so 10 000 threads fit in any memory.
   Prints "MODE: N threads, S s". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int pipe_fds[2];
static volatile int stop;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) static void wait_for_the_signal(void) {
    pthread_mutex_lock(&lock);
    while (!stop) pthread_cond_wait(&wake, &lock);
    pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) static void read_the_pipe(void) {
    char byte;
    while (read(pipe_fds[0], &byte, 1) > 0) {
    }
}

__attribute__((noinline)) static void sleep_in_a_loop(void) {
    struct timespec pause = {0, 50 * 1000 * 1000};
    while (!stop) nanosleep(&pause, NULL);
}

static void *waiter(void *arg) { (void)arg; wait_for_the_signal(); return NULL; }
static void *reader(void *arg) { (void)arg; read_the_pipe(); return NULL; }
static void *sleeper(void *arg) { (void)arg; sleep_in_a_loop(); return NULL; }

int main(int argc, char **argv) {
    void *(*body)(void *) = NULL;
    if (argc == 4 && !strcmp(argv[1], "cond")) body = waiter;
    if (argc == 4 && !strcmp(argv[1], "read")) body = reader;
    if (argc == 4 && !strcmp(argv[1], "sleep")) body = sleeper;
    if (!body) {
        fprintf(stderr, "usage: %s cond|read|sleep N MS\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[2]);
    double seconds = atof(argv[3]) / 1e3, start = now_s();
    if (pipe(pipe_fds) != 0) return 1;
    pthread_t *threads = calloc(count, sizeof *threads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < count; i++)
        if (pthread_create(&threads[i], &attr, body, NULL) != 0) {
            fprintf(stderr, "pthread_create failed at thread %d\n", i);
            return 1;
        }
    double left;
    while ((left = start + seconds - now_s()) > 0) {
        struct timespec pause = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
        nanosleep(&pause, NULL);
    }
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    close(pipe_fds[1]);
    for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
    printf("%s: %d threads, %.3f s\n", argv[1], count, now_s() - start);
    return 0;
}
