/* Installs its own SIGPROF handler and setitimer(ITIMER_PROF) at 100 Hz, blocks and unblocks
 * SIGPROF, burns CPU, and prints how often its handler ran. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile unsigned long sink;
static volatile sig_atomic_t ticks;

static void on_prof(int signal) { (void)signal; ticks++; }

int main(void) {
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
        for (unsigned long i = 0; i < 20000000UL; i++) sink += i;
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        for (unsigned long i = 0; i < 60000000UL; i++) sink += i;
    }
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    fprintf(stderr, "cpu_ns=%lld\n", (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    printf("own handler ran %s\n", ticks > 10 ? "yes" : "no");
    fprintf(stderr, "ticks=%d\n", (int)ticks);
    return 0;
}
