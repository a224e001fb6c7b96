/* Case sigmask: the program's view of its own signal mask.
 *
 * The main thread blocks SIGPROF with sigprocmask and reads the mask back; it starts a thread
 * (which inherits the mask) and four threads that block SIGPROF with pthread_sigmask; every
 * thread burns CPU with SIGPROF blocked (the shim's timers keep running), then reads back its
 * mask, sigpending() and the SIGPROF action, unblocks SIGPROF and reads the mask again, and
 * finally sets a full mask and prints it as read back. Every observation is printed (by the
 * main thread, in a fixed order) and compared by the harness with the run without the shim.
 * Checks: identical output; exit 0.
 *
 * Defect caught (issue 9, mask view): a program that blocked SIGPROF reads it back unblocked
 * (the shim unblocks it to keep sampling), or finds a SIGPROF of the shim's pending. */
#include "stress.h"
#include <pthread.h>
#include <signal.h>

#define THREADS 4

static char results[THREADS + 2][512];

static void mask_string(const sigset_t *set, char *out) {
    for (int sig = 1; sig <= 64; sig++) out[sig - 1] = sigismember(set, sig) ? '1' : '.';
    out[64] = 0;
}

/* Observations of the calling thread, which has SIGPROF blocked, into `out`. */
static void observe(const char *who, char *out, size_t size, int (*set_mask)(int, const sigset_t *, sigset_t *)) {
    sigset_t current, pending, prof, full;
    size_t len = 0;
    set_mask(SIG_BLOCK, NULL, &current);
    len += snprintf(out + len, size - len, "%s: SIGPROF blocked before work: %s\n", who, sigismember(&current, SIGPROF) ? "yes" : "NO");
    burn_thread_cpu(50000000ull);
    set_mask(SIG_BLOCK, NULL, &current);
    len += snprintf(out + len, size - len, "%s: SIGPROF blocked after work: %s\n", who, sigismember(&current, SIGPROF) ? "yes" : "NO");
    sigemptyset(&pending);
    sigpending(&pending);
    len += snprintf(out + len, size - len, "%s: SIGPROF pending: %s\n", who, sigismember(&pending, SIGPROF) ? "YES" : "no");
    struct sigaction action;
    sigaction(SIGPROF, NULL, &action);
    len += snprintf(out + len, size - len, "%s: SIGPROF action: %s\n", who,
                    action.sa_handler == SIG_DFL ? "default" : action.sa_handler == SIG_IGN ? "ignore" : "A HANDLER");
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    set_mask(SIG_UNBLOCK, &prof, NULL);
    burn_thread_cpu(20000000ull);
    set_mask(SIG_BLOCK, NULL, &current);
    len += snprintf(out + len, size - len, "%s: SIGPROF blocked after unblocking: %s\n", who, sigismember(&current, SIGPROF) ? "YES" : "no");
    sigfillset(&full);
    set_mask(SIG_SETMASK, &full, &current);
    burn_thread_cpu(20000000ull);
    set_mask(SIG_BLOCK, NULL, &current);
    char text[65];
    mask_string(&current, text);
    len += snprintf(out + len, size - len, "%s: full mask reads back as %s\n", who, text);
    sigemptyset(&full);
    set_mask(SIG_SETMASK, &full, NULL);
}

static int thread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    return pthread_sigmask(how, set, old);
}

static void *blocker(void *arg) {
    int id = (int)(intptr_t)arg;
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &prof, NULL);
    char who[32];
    snprintf(who, sizeof who, "thread %d", id);
    observe(who, results[id], sizeof results[id], thread_sigmask);
    return NULL;
}

static void *inheritor(void *arg) {
    (void)arg;
    /* Created while the main thread had SIGPROF blocked: starts with it blocked. */
    observe("inheriting thread", results[THREADS], sizeof results[THREADS], thread_sigmask);
    return NULL;
}

int main(void) {
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    if (sigprocmask(SIG_BLOCK, &prof, NULL) != 0) fail("sigprocmask");
    pthread_t threads[THREADS + 1];
    if (pthread_create(&threads[THREADS], NULL, inheritor, NULL) != 0) fail("pthread_create");
    sigprocmask(SIG_UNBLOCK, &prof, NULL); /* the blockers block it themselves */
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, blocker, (void *)(intptr_t)i) != 0) fail("pthread_create");
    sigprocmask(SIG_BLOCK, &prof, NULL);
    observe("main", results[THREADS + 1], sizeof results[THREADS + 1], sigprocmask);
    for (int i = 0; i <= THREADS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS + 2; i++) fputs(results[i], stdout);
    return 0;
}
