/* Calls sigaction(SIGPROF) in a tight loop while its own ITIMER_PROF delivers SIGPROF to its
 * own handler: a handler must never find the recorded action half-written. Prints
 * "handled N" (N > 0) when done. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <stdlib.h>
#include <time.h>

#include "clocks.h"

static volatile sig_atomic_t handled;

static void on_sigprof(int signal) {
    (void)signal;
    handled++;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigprof;
    action.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &action, 0);
    struct itimerval timer = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_PROF, &timer, 0);
    do {
        for (int i = 0; i < 1000; i++) sigaction(SIGPROF, &action, 0);
    } while (process_cpu_ns() < ms_to_ns(seconds * 1000));
    printf("handled %d\n", (int)handled);
    return 0;
}
