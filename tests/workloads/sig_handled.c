/* A program that handles SIGTERM, ignores SIGHUP (signal()) and SIGABRT (sigaction), and
 * leaves SIGINT alone. It reads its actions back, sleeps in nanosleep and poll while a thread
 * sends it the ignored signals (neither call may see EINTR), raises SIGTERM (its handler
 * runs), then puts SIGTERM back to SIG_DFL and raises it: it dies of SIGTERM. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t terms;
static pid_t main_tid;

static void on_term(int signal) { (void)signal; terms++; }

static unsigned long long word(const sigset_t *set) {
    unsigned long long w;
    memcpy(&w, set, sizeof w);
    return w;
}

static void show(int signal, const char *name) {
    struct sigaction action;
    sigaction(signal, NULL, &action);
    const char *handler = action.sa_handler == SIG_DFL ? "SIG_DFL" : action.sa_handler == SIG_IGN ? "SIG_IGN" : action.sa_handler == on_term ? "on_term" : "other";
    printf("%s: %s flags %x mask %llx\n", name, handler, action.sa_flags, word(&action.sa_mask));
}

static void *sender(void *unused) {
    (void)unused;
    struct timespec pause = {0, 100000000};
    for (int round = 0; round < 2; round++) {
        nanosleep(&pause, NULL);
        syscall(SYS_tgkill, getpid(), main_tid, SIGHUP);
        syscall(SYS_tgkill, getpid(), main_tid, SIGABRT);
        nanosleep(&pause, NULL);
        syscall(SYS_tgkill, getpid(), main_tid, SIGHUP);
        syscall(SYS_tgkill, getpid(), main_tid, SIGABRT);
        nanosleep(&pause, NULL);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_tid = syscall(SYS_gettid);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_term;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGUSR1);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGHUP, SIG_IGN);
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGABRT, &ignore, NULL);
    show(SIGTERM, "SIGTERM");
    show(SIGHUP, "SIGHUP");
    show(SIGABRT, "SIGABRT");
    show(SIGINT, "SIGINT");
    show(SIGSEGV, "SIGSEGV");

    pthread_t thread;
    pthread_create(&thread, NULL, sender, NULL);
    struct timespec sleep = {0, 350000000}, left;
    int slept = nanosleep(&sleep, &left);
    printf("nanosleep returned %d%s\n", slept, slept ? (errno == EINTR ? " EINTR" : " error") : "");
    int polled = poll(NULL, 0, 350);
    printf("poll returned %d%s\n", polled, polled ? (errno == EINTR ? " EINTR" : " error") : "");
    pthread_join(thread, NULL);

    raise(SIGTERM);
    printf("SIGTERM handler ran %d times\n", (int)terms);
    struct sigaction previous;
    signal(SIGTERM, SIG_DFL);
    sigaction(SIGTERM, NULL, &previous);
    printf("SIGTERM back to %s\n", previous.sa_handler == SIG_DFL ? "SIG_DFL" : "other");
    raise(SIGTERM);
    printf("still alive\n");
    return 0;
}
