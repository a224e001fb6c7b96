/* The cost of a thread's start and exit (issue 19): pthread_create + pthread_join of a thread
   that returns at once, in a loop for MS ms of wall time, against the bare per-thread
   sampling mechanisms.

     thread_cycle bare MS     nothing per thread (run it under LD_PRELOAD=libsigtrace.so too)
     thread_cycle perf MS     each thread, the main one too, opens a perf task-clock event at
                              999 Hz that signals it (F_SETOWN_EX, F_SETSIG), enables it, and
                              closes it at exit: sigtrace's default mechanism, bare (the main
                              thread's event costs at each switch in and out of pthread_join)
     thread_cycle posix MS    each thread, the main one too, creates a CLOCK_THREAD_CPUTIME_ID
                              POSIX timer at 999 Hz (SIGEV_THREAD_ID), arms it, and deletes it
                              at exit

   Prints "MODE: N cycles in S s, X us/cycle wall, Y us/cycle CPU" (CPU: the whole process's). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *mode;
static volatile long hits;

static void handler(int s, siginfo_t *i, void *u) { (void)s; (void)i; (void)u; hits++; }

static double now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Arms the calling thread's timer of `mode`; returns what disarm() needs. */
static long arm(void) {
    if (!strcmp(mode, "perf")) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.type = PERF_TYPE_SOFTWARE;
        attr.size = sizeof attr;
        attr.config = PERF_COUNT_SW_TASK_CLOCK;
        attr.sample_period = 1000000000 / 999;
        attr.disabled = 1;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        attr.wakeup_events = 1;
        int fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) { perror("perf_event_open"); exit(1); }
        struct f_owner_ex owner = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)};
        fcntl(fd, F_SETOWN_EX, &owner);
        fcntl(fd, F_SETSIG, SIGPROF);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
        ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
        return fd;
    } else if (!strcmp(mode, "posix")) {
        struct sigevent event;
        memset(&event, 0, sizeof event);
        event.sigev_notify = SIGEV_THREAD_ID;
        event.sigev_signo = SIGPROF;
        event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        timer_t timer;
        if (timer_create(CLOCK_THREAD_CPUTIME_ID, &event, &timer)) { perror("timer_create"); exit(1); }
        struct itimerspec period = {{0, 1000000000 / 999}, {0, 1000000000 / 999}};
        timer_settime(timer, 0, &period, NULL);
        return (long)timer;
    }
    return -1;
}

static void disarm(long armed) {
    if (!strcmp(mode, "perf")) close((int)armed);
    else if (!strcmp(mode, "posix")) timer_delete((timer_t)armed);
}

static void *body(void *unused) {
    (void)unused;
    disarm(arm());
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: thread_cycle bare|perf|posix MS\n"); return 2; }
    mode = argv[1];
    double ms = atof(argv[2]);
    if (strcmp(mode, "bare")) {
        struct sigaction a;
        memset(&a, 0, sizeof a);
        a.sa_sigaction = handler;
        a.sa_flags = SA_SIGINFO | SA_RESTART;
        sigaction(SIGPROF, &a, 0);
        arm(); /* the main thread is sampled too, and pays for its switches in and out of join */
    }
    double start = now(CLOCK_MONOTONIC), cpu = now(CLOCK_PROCESS_CPUTIME_ID), end = start + ms / 1000;
    long cycles = 0;
    while (now(CLOCK_MONOTONIC) < end) {
        for (int i = 0; i < 16; i++, cycles++) {
            pthread_t thread;
            if (pthread_create(&thread, NULL, body, NULL)) { perror("pthread_create"); return 1; }
            pthread_join(thread, NULL);
        }
    }
    double wall = now(CLOCK_MONOTONIC) - start, used = now(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    printf("%s: %ld cycles in %.2f s, %.2f us/cycle wall, %.2f us/cycle CPU\n", mode, cycles, wall, wall * 1e6 / cycles, used * 1e6 / cycles);
    return 0;
}
