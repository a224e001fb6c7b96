/* Pausing and resuming sampling (SIGTRACE_PAUSED, SIGTRACE_TOGGLE_SIGNAL, sigtrace.h).
 *
 *   pause_toggle signal MS   burns MS of CPU in first_half(), sends itself SIGUSR2, burns MS
 *                            more in second_half() (run with SIGTRACE_PAUSED=1 and
 *                            SIGTRACE_TOGGLE_SIGNAL=SIGUSR2: only the second half is sampled)
 *   pause_toggle call MS     the same with SIGTRACE_RESUME() from sigtrace.h (dlsym) in place
 *                            of the signal, then SIGTRACE_PAUSE() and MS more in third_part()
 *   pause_toggle waits MS    a thread sends the process SIGUSR2 every 20 ms while the main
 *                            thread sleeps (nanosleep, usleep, sleep), waits with timeouts (poll,
 *                            ppoll, select, pselect, epoll_wait, sem_timedwait) and reads a pipe
 *                            for MS in all; any EINTR or short wait is printed and exits 1
 *   pause_toggle own         installs its own SIGUSR2 handler, raises SIGUSR2: prints whether
 *                            its handler ran
 *
 * Prints each part's CPU time on stderr (first_ns=, second_ns=, third_ns=); exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../../shim/include/sigtrace.h"
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static long long burn(long long ns) {
    long long start = thread_cpu_ns();
    while (thread_cpu_ns() - start < ns) {
        for (int i = 0; i < 10000; i++) sink += (unsigned long)i * i;
    }
    return thread_cpu_ns() - start;
}
/* The increments after the calls keep gcc from turning them into tail jumps. */
__attribute__((noinline)) long long first_half(long long ns) { long long spent = burn(ns); sink++; return spent; }
__attribute__((noinline)) long long second_half(long long ns) { long long spent = burn(ns); sink++; return spent; }
__attribute__((noinline)) long long third_part(long long ns) { long long spent = burn(ns); sink++; return spent; }

static volatile sig_atomic_t own_ran;
static void own_handler(int signal) { (void)signal; own_ran = 1; }

static volatile int stop_toggling;
static void *toggler(void *arg) {
    (void)arg;
    while (!stop_toggling) {
        kill(getpid(), SIGUSR2);
        usleep(20000);
    }
    return NULL;
}

static int check(const char *what, int ok) {
    if (!ok) printf("%s: %s\n", what, strerror(errno));
    return ok;
}

/* Checks that a wait with a 30 ms timeout returned `expected` after at least 30 ms. */
static int timed(const char *what, long long before, int result, int expected) {
    long long waited = monotonic_ns() - before;
    if (result != expected) {
        printf("%s returned %d: %s\n", what, result, strerror(errno));
        return 0;
    }
    if (waited < 30 * NS_PER_MS) {
        printf("%s waited %lld ns of 30 ms\n", what, waited);
        return 0;
    }
    return 1;
}

/* The waits with a timeout: each times out after 30 ms, toggled or not. */
static int timed_waits(int epoll, sem_t *semaphore) {
    int ok = 1;
    long long before = monotonic_ns();
    ok &= timed("poll", before, poll(NULL, 0, 30), 0);
    before = monotonic_ns();
    struct timespec span = {0, 30 * 1000 * 1000};
    ok &= timed("ppoll", before, ppoll(NULL, 0, &span, NULL), 0);
    before = monotonic_ns();
    struct timeval tv = {0, 30 * 1000};
    ok &= timed("select", before, select(0, NULL, NULL, NULL, &tv), 0);
    before = monotonic_ns();
    ok &= timed("pselect", before, pselect(0, NULL, NULL, NULL, &span, NULL), 0);
    before = monotonic_ns();
    struct epoll_event event;
    ok &= timed("epoll_wait", before, epoll_wait(epoll, &event, 1, 30), 0);
    before = monotonic_ns();
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 30 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000; }
    int result = sem_timedwait(semaphore, &deadline);
    ok &= timed("sem_timedwait", before, result == -1 && errno == ETIMEDOUT ? 0 : result, 0);
    return ok;
}

static int waits(long long total_ns) {
    /* The toggling thread blocks nothing; the main thread blocks nothing: either may take it. */
    pthread_t thread;
    pthread_create(&thread, NULL, toggler, NULL);
    int fds[2];
    if (pipe(fds) != 0) return 1;
    int ok = 1, rounds = 0;
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    sem_t semaphore;
    sem_init(&semaphore, 0, 0);
    long long start = monotonic_ns();
    while (monotonic_ns() - start < total_ns) {
        long long before = monotonic_ns();
        struct timespec request = {0, 30 * 1000 * 1000};
        ok &= check("nanosleep", nanosleep(&request, NULL) == 0);
        ok &= check("usleep", usleep(30000) == 0);
        ok &= check("sleep", sleep(0) == 0);
        long long slept = monotonic_ns() - before;
        if (slept < 60 * NS_PER_MS) {
            printf("slept %lld ns of 60 ms\n", slept);
            ok = 0;
        }
        ok &= timed_waits(epoll, &semaphore);
        /* A read that blocks until a byte comes from a forked writer 30 ms later. */
        pid_t child = fork();
        if (child == 0) {
            struct timespec wait = {0, 30 * 1000 * 1000};
            while (nanosleep(&wait, &wait) != 0) {}
            char byte = 'x';
            _exit(write(fds[1], &byte, 1) == 1 ? 0 : 1);
        }
        char byte;
        ok &= check("read", read(fds[0], &byte, 1) == 1);
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        rounds++;
    }
    stop_toggling = 1;
    pthread_join(thread, NULL);
    printf("waits %s after %d rounds\n", ok ? "ok" : "FAILED", rounds);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "signal";
    long long ns = (argc > 2 ? atoll(argv[2]) : 300) * NS_PER_MS;
    if (strcmp(mode, "own") == 0) {
        signal(SIGUSR2, own_handler);
        raise(SIGUSR2);
        printf("own handler %s\n", own_ran ? "ran" : "did not run");
        return 0;
    }
    if (strcmp(mode, "waits") == 0) return waits(ns);
    int by_call = strcmp(mode, "call") == 0;
    long long first = first_half(ns);
    if (by_call) SIGTRACE_RESUME();
    else kill(getpid(), SIGUSR2);
    long long second = second_half(ns);
    long long third = 0;
    if (by_call) {
        SIGTRACE_PAUSE();
        third = third_part(ns);
    }
    printf("pause_toggle %s done %d\n", mode, sink != 0);
    fprintf(stderr, "first_ns=%lld\nsecond_ns=%lld\nthird_ns=%lld\n", first, second, third);
    return 0;
}
