/* The program's view of its own signal mask, pending set and SIGPROF action. Modes:
 *   view  - blocks/unblocks SIGPROF (and SIGUSR1) with sigprocmask and pthread_sigmask, reads
 *           the mask back both ways plus sigpending, in the main thread and in a thread created
 *           while SIGPROF is blocked; reads back its SIGPROF action; prints all of it.
 *   held  - its own handler and ITIMER_PROF at 100 Hz while it has SIGPROF blocked for
 *           CPU_MS of CPU: prints how often the handler ran while blocked (0), whether
 *           SIGPROF is pending, and how often it ran right after unblocking (1).
 *   suspend - SIGPROF blocked, sent to itself with kill, then sigsuspend() with an empty mask
 *           must return (EINTR) after the handler ran.
 *   wait  - SIGPROF blocked, sent to itself with kill, taken with sigwait / sigtimedwait.
 *   exec  - blocks SIGPROF and execs itself in mode "show", which prints whether SIGPROF is
 *           blocked and pending (a pending SIGPROF sent before the exec is kept across it). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static volatile sig_atomic_t calls;
static volatile unsigned long sink;

static void on_prof(int signal) { (void)signal; calls++; }

static void burn_ms(long long ms) {
    long long until = process_cpu_ns() + ms * NS_PER_MS;
    while (process_cpu_ns() < until)
        for (int i = 0; i < 10000; i++) sink += i;
}

static unsigned long long word(const sigset_t *set) {
    unsigned long long w;
    memcpy(&w, set, sizeof w);
    return w;
}

static void show(const char *label) {
    sigset_t a, b, p;
    sigprocmask(SIG_BLOCK, NULL, &a);
    pthread_sigmask(SIG_SETMASK, NULL, &b);
    sigpending(&p);
    printf("%s: sigprocmask %llx PROF=%d, pthread_sigmask %llx PROF=%d, pending %llx\n", label, word(&a), sigismember(&a, SIGPROF), word(&b),
           sigismember(&b, SIGPROF), word(&p));
}

static void *thread_main(void *label) {
    show(label);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    show("thread after unblocking");
    return NULL;
}

static void install_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_prof;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &action, NULL);
}

static int view(void) {
    sigset_t prof, both, old, empty;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    both = prof;
    sigaddset(&both, SIGUSR1);
    sigemptyset(&empty);
    show("start");
    sigprocmask(SIG_BLOCK, &both, &old);
    printf("old mask returned by sigprocmask: %llx\n", word(&old));
    show("after sigprocmask(SIG_BLOCK, PROF|USR1)");
    pthread_t thread;
    pthread_create(&thread, NULL, thread_main, "thread created while blocked");
    pthread_join(thread, NULL);
    show("main after the thread ended");
    pthread_sigmask(SIG_UNBLOCK, &prof, &old);
    printf("old mask returned by pthread_sigmask: %llx\n", word(&old));
    show("after pthread_sigmask(SIG_UNBLOCK, PROF)");
    pthread_sigmask(SIG_SETMASK, &both, &old);
    printf("old mask returned by SIG_SETMASK: %llx\n", word(&old));
    show("after pthread_sigmask(SIG_SETMASK, PROF|USR1)");
    sigprocmask(SIG_SETMASK, &empty, &old);
    printf("old mask returned by SIG_SETMASK: %llx\n", word(&old));
    show("after sigprocmask(SIG_SETMASK, empty)");
    printf("invalid how: %d\n", pthread_sigmask(12345, &prof, NULL));

    /* The SIGPROF action reads back as the kernel would report it. */
    struct sigaction action, back, usr2;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_prof;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGUSR1);
    sigaddset(&action.sa_mask, SIGKILL);
    sigaction(SIGPROF, &action, NULL);
    sigaction(SIGUSR2, &action, NULL);
    sigaction(SIGPROF, NULL, &back);
    sigaction(SIGUSR2, NULL, &usr2);
    printf("SIGPROF action: handler %s, flags %x, mask %llx, restorer %s\n", back.sa_handler == on_prof ? "ours" : "other", back.sa_flags,
           word(&back.sa_mask), back.sa_restorer == usr2.sa_restorer ? "as for SIGUSR2" : "different");
    signal(SIGPROF, SIG_IGN);
    sigaction(SIGPROF, NULL, &back);
    printf("after signal(SIG_IGN): handler %s, flags %x, mask %llx\n", back.sa_handler == SIG_IGN ? "SIG_IGN" : "other", back.sa_flags,
           word(&back.sa_mask));
    signal(SIGPROF, on_prof);
    sigaction(SIGPROF, NULL, &back);
    printf("after signal(handler): flags %x, mask %llx\n", back.sa_flags, word(&back.sa_mask));
    return 0;
}

static int held(long long budget_ms) {
    install_handler();
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    sigprocmask(SIG_BLOCK, &prof, NULL);
    struct itimerval timer = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &timer, NULL);
    burn_ms(budget_ms);
    setitimer(ITIMER_PROF, &off, NULL);
    int while_blocked = calls;
    sigset_t pending;
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &prof, NULL);
    int after = calls;
    sigpending(&pending);
    printf("while blocked: %d calls, SIGPROF pending %d; after unblocking: %d calls, pending %d\n", while_blocked, was_pending, after,
           sigismember(&pending, SIGPROF));
    return 0;
}

static int suspend(void) {
    install_handler();
    sigset_t prof, empty;
    sigemptyset(&prof);
    sigemptyset(&empty);
    sigaddset(&prof, SIGPROF);
    sigprocmask(SIG_BLOCK, &prof, NULL);
    kill(getpid(), SIGPROF);
    int before = calls;
    int result = sigsuspend(&empty);
    int error = errno;
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("before sigsuspend: %d calls; sigsuspend returned %d (%s) after %d calls; PROF blocked after: %d\n", before, result,
           error == EINTR ? "EINTR" : "other", calls, sigismember(&now, SIGPROF));
    return 0;
}

static int wait_for_it(void) {
    install_handler();
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    sigprocmask(SIG_BLOCK, &prof, NULL);
    kill(getpid(), SIGPROF);
    int signal = 0;
    int result = sigwait(&prof, &signal);
    printf("sigwait returned %d with signal %d, %d calls\n", result, signal, calls);
    union sigval value = {.sival_int = 42};
    sigqueue(getpid(), SIGPROF, value);
    siginfo_t info;
    struct timespec patience = {5, 0};
    result = sigtimedwait(&prof, &info, &patience);
    printf("sigtimedwait returned %d, code %d, value %d, %d calls\n", result, info.si_code, info.si_value.sival_int, calls);
    sigset_t pending;
    sigpending(&pending);
    printf("pending after: %d\n", sigismember(&pending, SIGPROF));
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "view";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "view")) return view();
    if (!strcmp(mode, "held")) return held(argc > 2 ? atoll(argv[2]) : 300);
    if (!strcmp(mode, "suspend")) return suspend();
    if (!strcmp(mode, "wait")) return wait_for_it();
    if (!strcmp(mode, "exec")) {
        sigset_t prof;
        sigemptyset(&prof);
        sigaddset(&prof, SIGPROF);
        signal(SIGPROF, on_prof);
        sigprocmask(SIG_BLOCK, &prof, NULL);
        kill(getpid(), SIGPROF);
        printf("before exec: %d calls\n", calls);
        execl("/proc/self/exe", argv[0], "show", (char *)NULL);
        perror("exec");
        return 1;
    }
    if (!strcmp(mode, "show")) {
        sigset_t now, pending;
        sigprocmask(SIG_BLOCK, NULL, &now);
        sigpending(&pending);
        printf("after exec: PROF blocked %d, pending %d\n", sigismember(&now, SIGPROF), sigismember(&pending, SIGPROF));
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
