/* The floor of a preloaded profiler's start and exit (issue 19): a library that, in its
   constructor, installs a SIGPROF handler, opens a perf task-clock event at 999 Hz signalling
   the main thread, creates a file (O_EXCL, named FLOOR_OUT.PID) and writes a 100-byte header;
   in its destructor closes the event and writes 500 bytes. A forked child does the same as it
   starts (a new event and file), as a profiler that follows forks must. What any sampling
   profiler that writes a file per process must do; sigtrace's start and exit are measured
   against it.

     cc -O2 -shared -fPIC -o floor_preload.so floor_preload.c
     FLOOR_OUT=/tmp/f LD_PRELOAD=./floor_preload.so PROGRAM */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
static int out = -1, ev = -1;
static void handler(int s, siginfo_t *i, void *u) { (void)s; (void)i; (void)u; }
static void start(void);
static void in_child(void) { if (ev >= 0) close(ev); if (out >= 0) close(out); start(); }
__attribute__((constructor)) static void start(void) {
    static int once;
    if (!once) { once = 1; pthread_atfork(0, 0, in_child); }
    struct sigaction a; memset(&a, 0, sizeof a); a.sa_sigaction = handler; a.sa_flags = SA_SIGINFO | SA_RESTART; sigaction(SIGPROF, &a, 0);
    struct perf_event_attr attr; memset(&attr, 0, sizeof attr); attr.type = PERF_TYPE_SOFTWARE; attr.size = sizeof attr; attr.config = PERF_COUNT_SW_TASK_CLOCK; attr.sample_period = 1001001; attr.disabled = 1; attr.exclude_kernel = 1; attr.exclude_hv = 1; attr.wakeup_events = 1;
    ev = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    struct f_owner_ex owner = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)};
    fcntl(ev, F_SETOWN_EX, &owner); fcntl(ev, F_SETSIG, SIGPROF); fcntl(ev, F_SETFL, O_ASYNC | O_NONBLOCK); ioctl(ev, PERF_EVENT_IOC_ENABLE, 0);
    char path[256]; snprintf(path, sizeof path, "%s.%d", getenv("FLOOR_OUT"), getpid());
    out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    char header[100] = "header"; write(out, header, sizeof header);
}
__attribute__((destructor)) static void stop(void) {
    close(ev);
    char body[500] = "generation"; write(out, body, sizeof body); close(out);
}
