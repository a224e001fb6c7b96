/* Installs its own SIGPROF handler and setitimer(ITIMER_PROF) at 100 Hz, then 20 rounds of:
 * SIGPROF blocked while it burns BLOCKED_MS of its CPU time (default 5), unblocked while it
 * burns UNBLOCKED_MS (default 15). The itimer expires every 10 ms of process CPU time, so the
 * handler runs at least once per 10 ms of unblocked time (30 times with the defaults). Prints
 * how often its handler ran. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "clocks.h"

static volatile unsigned long sink;
static volatile sig_atomic_t ticks;

static void on_prof(int signal) { (void)signal; ticks++; }

/* Burns `ms` of the calling thread's CPU time. */
static void burn(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i;
    } while (thread_cpu_ns() < until);
}

int main(int argc, char **argv) {
    long long blocked_ms = argc > 1 ? atoll(argv[1]) : 5;
    long long unblocked_ms = argc > 2 ? atoll(argv[2]) : 15;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_prof;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGPROF, &action, NULL) != 0) return 1;
    struct itimerval timer = {{0, 10000}, {0, 10000}};
    if (setitimer(ITIMER_PROF, &timer, NULL) != 0) return 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    for (int round = 0; round < 20; round++) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        burn(blocked_ms);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        burn(unblocked_ms);
    }
    fprintf(stderr, "cpu_ns=%lld\n", process_cpu_ns());
    printf("own handler ran %s\n", ticks > 10 ? "yes" : "no");
    fprintf(stderr, "ticks=%d\n", (int)ticks);
    return 0;
}
