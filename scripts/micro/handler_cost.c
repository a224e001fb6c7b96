/* The sampling handler's cost per sample against the floor (issue 5).

   A thread at the bottom of a DEPTH-deep recursion (frame pointers kept) sends itself signals
   with rt_tgsigqueueinfo, whose siginfo says "a perf event's descriptor is readable" (si_code
   POLL_IN): what sigtrace's handler gets from its perf timer, without the timer's own cost
   (the perf hrtimer alone costs more than the handler on a VM; see hrtimer_only.c).

     handler_cost ignore DEPTH N   the signal ignored: the sending system call only
     handler_cost floor DEPTH N    a minimal SA_SIGINFO handler that walks the frame-pointer
                                   chain into a buffer (delivery + sigreturn + the walk)
     handler_cost sampled DEPTH N  no handler of its own: run it under LD_PRELOAD=libsigtrace.so
                                   (SIGTRACE_HZ=1) and sigtrace's handler takes the signals

   Signals go in bursts of 50 with a 4 ms pause, so sigtrace's drain thread keeps the rings from
   filling (check `sigtrace info`: dropped 0). Prints the sending thread's CPU time per signal. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static uintptr_t stack_low, stack_high;
static uintptr_t frames[512];
static volatile long walked;

static void floor_handler(int signal, siginfo_t *info, void *context) {
    (void)signal; (void)info;
    ucontext_t *uc = context;
    uintptr_t fp = uc->uc_mcontext.gregs[REG_RBP];
    long n = 0;
    frames[n++] = uc->uc_mcontext.gregs[REG_RIP];
    while (n < 512 && fp >= stack_low && fp + 16 <= stack_high && (fp & 7) == 0) {
        uintptr_t *frame = (uintptr_t *)fp;
        frames[n++] = frame[1];
        if (frame[0] <= fp) break;
        fp = frame[0];
    }
    walked += n;
}

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long signals;

static double __attribute__((noinline)) send_all(void) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGPROF;
    info.si_code = POLL_IN;
    info.si_fd = 3;
    double cpu = 0;
    for (long sent = 0; sent < signals; sent += 50) {
        double t0 = thread_cpu();
        for (int i = 0; i < 50; i++) syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGPROF, &info);
        cpu += thread_cpu() - t0;
        struct timespec pause = {0, 4000000};
        nanosleep(&pause, 0);
    }
    return cpu;
}

static double __attribute__((noinline)) dive(int depth) {
    if (depth <= 1) return send_all();
    double result = dive(depth - 1);
    __asm__ volatile("" ::: "memory"); /* no tail call: every level keeps its frame */
    return result;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s ignore|floor|sampled DEPTH N\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    int depth = atoi(argv[2]);
    signals = atol(argv[3]);
    pthread_attr_t attr;
    void *base;
    size_t size;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &base, &size);
    stack_low = (uintptr_t)base;
    stack_high = stack_low + size;
    if (!strcmp(mode, "ignore")) {
        signal(SIGPROF, SIG_IGN);
    } else if (!strcmp(mode, "floor")) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = floor_handler;
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigaction(SIGPROF, &action, 0);
    } else if (strcmp(mode, "sampled")) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    double cpu = dive(depth);
    printf("%s depth %d: %.0f ns per signal (%ld signals, %.1f frames walked per signal)\n", mode, depth, cpu / signals * 1e9, signals,
           (double)walked / signals);
    return 0;
}
