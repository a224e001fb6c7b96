/* The floor of a server's cost: two threads pinned to one CPU ping-pong a byte over pipes
 * for SECONDS of wall time, each sampled the way MECHANISM says, and the round trips per
 * second are printed ("round_trips_per_s=N"). MECHANISM:
 *   none   no sampling (the bare program)
 *   perf   a perf task-clock event per thread at HZ, signal delivery as sigtrace sets it up
 *          (O_ASYNC, F_SETSIG, F_SETOWN_EX), an empty handler: what sigtrace's perf source
 *          cannot cost less than
 *   posix  a POSIX CPU timer per thread at HZ (SIGEV_THREAD_ID), an empty handler
 * Usage: pingpong MECHANISM SECONDS [HZ] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int to_peer[2], to_main[2];
static const char *mechanism;
static long period_ns;

static void on_signal(int signal, siginfo_t *info, void *context) { (void)signal; (void)info; (void)context; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Arms the calling thread's sampling mechanism. */
static void arm(void) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (strcmp(mechanism, "perf") == 0) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.type = PERF_TYPE_SOFTWARE;
        attr.size = sizeof attr;
        attr.config = PERF_COUNT_SW_TASK_CLOCK;
        attr.sample_period = period_ns;
        attr.disabled = 1;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        attr.wakeup_events = 1;
        int fd = (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) { perror("perf_event_open"); exit(1); }
        struct f_owner_ex owner = {F_OWNER_TID, tid};
        fcntl(fd, F_SETFL, O_ASYNC | O_NONBLOCK);
        fcntl(fd, F_SETSIG, SIGPROF);
        fcntl(fd, F_SETOWN_EX, &owner);
        ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    } else if (strcmp(mechanism, "posix") == 0) {
        struct sigevent event;
        memset(&event, 0, sizeof event);
        event.sigev_notify = SIGEV_THREAD_ID;
        event.sigev_signo = SIGPROF;
        event._sigev_un._tid = tid;
        clockid_t clock;
        pthread_getcpuclockid(pthread_self(), &clock);
        timer_t timer;
        if (timer_create(clock, &event, &timer)) { perror("timer_create"); exit(1); }
        struct itimerspec spec = {{0, period_ns}, {0, period_ns}};
        timer_settime(timer, 0, &spec, NULL);
    } else if (strcmp(mechanism, "none") != 0) {
        fprintf(stderr, "unknown mechanism %s\n", mechanism);
        exit(2);
    }
}

static void *peer(void *unused) {
    (void)unused;
    arm();
    char byte;
    while (read(to_peer[0], &byte, 1) == 1 && byte != 'q')
        if (write(to_main[1], &byte, 1) != 1) break;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: pingpong none|perf|posix SECONDS [HZ]\n"); return 2; }
    mechanism = argv[1];
    double seconds = atof(argv[2]);
    period_ns = 1000000000L / (argc > 3 ? atol(argv[3]) : 999);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGPROF, &action, NULL);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one); /* inherited by the peer */
    if (pipe(to_peer) || pipe(to_main)) return 1;
    pthread_t thread;
    pthread_create(&thread, NULL, peer, NULL);
    arm();
    char byte = 'x';
    long round_trips = 0;
    double start = now(), end = start + seconds, t = start;
    while (t < end) {
        for (int i = 0; i < 256; i++) {
            if (write(to_peer[1], &byte, 1) != 1 || read(to_main[0], &byte, 1) != 1) return 1;
        }
        round_trips += 256;
        t = now();
    }
    byte = 'q';
    if (write(to_peer[1], &byte, 1) != 1) return 1;
    pthread_join(thread, NULL);
    printf("round_trips_per_s=%.0f\n", round_trips / (t - start));
    return 0;
}
