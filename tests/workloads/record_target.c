/* The command `sigtrace record` runs in tests/tests/integration/commands/record.rs. `record_target MODE [MARKER]`
 * first creates the file MARKER (when given: proof that it ran), prints `ready pid=P` on stdout
 * once it is running, then, by MODE:
 *   burn       burns CPU until a signal kills it (default dispositions);
 *   tree       forks a child, and both burn until a signal kills them;
 *   term0      burns until SIGTERM, which it handles: exits 0;
 *   count-int  burns until SIGINT, which it handles; burns 300 ms of wall time more (a second
 *              SIGINT would land then), prints `sigint_count=N` and exits 0;
 *   fan N      forks N children that burn 20 ms of CPU each and exit; waits for them; exits 0;
 *   short      burns 20 ms of CPU and exits 0.
 * Burning stops after 30 s of CPU time whatever happens (exit 3): a test that never sends its
 * signal fails instead of hanging. */
#define _GNU_SOURCE
#include "clocks.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t terms, ints;
static volatile unsigned long sink;

static void on_term(int signal) { (void)signal; terms++; }
static void on_int(int signal) { (void)signal; ints++; }

/* Burns the calling process's CPU until `*stop` is set or `ms` of its CPU time are used
 * (ms < 0: 30 s, then exit 3). */
static void burn(volatile sig_atomic_t *stop, long long ms) {
    long long limit = ms < 0 ? 30000 : ms;
    long long until = process_cpu_ns() + limit * NS_PER_MS;
    while (!(stop && *stop)) {
        for (unsigned long i = 0; i < 100000; i++) sink += i ^ (i >> 3);
        if (process_cpu_ns() >= until) {
            if (ms < 0) exit(3);
            return;
        }
    }
}

static void ready(void) {
    printf("ready pid=%d\n", (int)getpid());
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *mode = argv[1];
    if (argc > 2 && strcmp(mode, "fan") != 0) close(open(argv[2], O_WRONLY | O_CREAT, 0644));
    if (strcmp(mode, "burn") == 0) {
        ready();
        burn(NULL, -1);
    } else if (strcmp(mode, "tree") == 0) {
        if (fork() < 0) return 4;
        ready();
        burn(NULL, -1);
    } else if (strcmp(mode, "term0") == 0) {
        signal(SIGTERM, on_term);
        ready();
        burn(&terms, -1);
        return 0;
    } else if (strcmp(mode, "count-int") == 0) {
        signal(SIGINT, on_int);
        ready();
        burn(&ints, -1);
        long long until = monotonic_ns() + 300 * NS_PER_MS;
        while (monotonic_ns() < until) sink++;
        printf("sigint_count=%d\n", (int)ints);
        return 0;
    } else if (strcmp(mode, "fan") == 0) {
        int n = argc > 2 ? atoi(argv[2]) : 0;
        ready();
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid < 0) return 4;
            if (pid == 0) {
                burn(NULL, 20);
                _exit(0);
            }
        }
        while (wait(NULL) > 0) {}
        return 0;
    } else if (strcmp(mode, "short") == 0) {
        ready();
        burn(NULL, 20);
        return 0;
    }
    return 2;
}
