/* Wall-clock mode's workload: for argv[1] ms of wall time, five threads that each spend it
 * differently: `sleeper` in sleep(1) and nanosleep, `reader` blocked reading an empty pipe,
 * `waiter` waiting for a mutex the busy thread holds, `poller` in epoll_wait with a 50 ms
 * timeout, `raw_reader` blocked reading another empty pipe through syscall(SYS_read) (a call
 * sigtrace does not interpose: found through /proc), and `busy`, which burns CPU holding that mutex. Every blocking call checks for EINTR
 * (none must happen) and sleep(1) must never be cut short; on stdout: "eintr=N short_sleeps=N".
 * On stderr, when the kernel keeps scheduler statistics: "waiter unblocked_ns=N", the time the
 * waiter spent on a CPU or waiting for one (/proc/thread-self/schedstat). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static double run_ms;
static int pipe_fds[2], raw_pipe_fds[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static int eintr, short_sleeps;
static volatile unsigned long sink;

static void count_error(int result) {
    if (result < 0 && errno == EINTR) __atomic_add_fetch(&eintr, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void sleep_a_while(void) {
    long long start = monotonic_ns();
    unsigned left = sleep(1);
    if (left != 0 || monotonic_ns() - start < 990 * NS_PER_MS) __atomic_add_fetch(&short_sleeps, 1, __ATOMIC_RELAXED);
    struct timespec pause = {0, 20 * 1000 * 1000};
    count_error(nanosleep(&pause, NULL));
}

static void *sleeper(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "sleeper");
    while (!stop) sleep_a_while();
    return NULL;
}

__attribute__((noinline)) static void read_the_pipe(void) {
    char byte;
    count_error((int)read(pipe_fds[0], &byte, 1));
}

static void *reader(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "reader");
    while (!stop) read_the_pipe();
    return NULL;
}

__attribute__((noinline)) static void read_the_pipe_raw(void) {
    char byte;
    count_error((int)syscall(SYS_read, raw_pipe_fds[0], &byte, 1));
}

static void *raw_reader(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "raw_reader");
    while (!stop) read_the_pipe_raw();
    return NULL;
}

__attribute__((noinline)) static void wait_for_the_lock(void) {
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
}

static void *waiter(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "waiter");
    while (!stop) wait_for_the_lock();
    FILE *schedstat = fopen("/proc/thread-self/schedstat", "r");
    long long on_cpu, run_delay;
    if (schedstat && fscanf(schedstat, "%lld %lld", &on_cpu, &run_delay) == 2) fprintf(stderr, "waiter unblocked_ns=%lld\n", on_cpu + run_delay);
    if (schedstat) fclose(schedstat);
    return NULL;
}

__attribute__((noinline)) static void poll_for_events(int epoll) {
    struct epoll_event event;
    count_error(epoll_wait(epoll, &event, 1, 50));
}

static void *poller(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "poller");
    int epoll = epoll_create1(0);
    while (!stop) poll_for_events(epoll);
    close(epoll);
    return NULL;
}

__attribute__((noinline)) static void burn_holding_the_lock(double ms) {
    pthread_mutex_lock(&lock);
    long long end = monotonic_ns() + ms_to_ns(ms);
    while (monotonic_ns() < end)
        for (int i = 0; i < 1000; i++) sink += i;
    pthread_mutex_unlock(&lock);
}

static void *busy(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "busy");
    while (!stop) {
        burn_holding_the_lock(100);
        /* Lets the waiter in now and then; it queues on the lock again at once. */
        struct timespec breath = {0, 100 * 1000};
        nanosleep(&breath, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    run_ms = argc > 1 ? atof(argv[1]) : 2000;
    if (pipe(pipe_fds) != 0 || pipe(raw_pipe_fds) != 0) return 1;
    void *(*bodies[])(void *) = {busy, sleeper, reader, waiter, poller, raw_reader};
    pthread_t threads[6];
    for (int i = 0; i < 6; i++) pthread_create(&threads[i], NULL, bodies[i], NULL);
    long long end = monotonic_ns() + ms_to_ns(run_ms);
    while (monotonic_ns() < end) usleep(10 * 1000);
    stop = 1;
    if (write(pipe_fds[1], "x", 1) != 1 || write(raw_pipe_fds[1], "x", 1) != 1) return 1;
    for (int i = 0; i < 6; i++) pthread_join(threads[i], NULL);
    printf("eintr=%d short_sleeps=%d\n", eintr, short_sleeps);
    return 0;
}
