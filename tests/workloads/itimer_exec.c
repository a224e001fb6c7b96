/* A process-wide itimer the program armed itself outlives its exec, as POSIX says:
 *   itimer_exec arm    arms ITIMER_PROF (SIGPROF ignored, 100 s: it never fires here) and
 *                      execs itself with "check"
 *   itimer_exec check  prints "itimer armed" if ITIMER_PROF still runs, else "itimer off" */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "arm") == 0) {
        signal(SIGPROF, SIG_IGN);
        struct itimerval timer = {.it_interval = {100, 0}, .it_value = {100, 0}};
        if (setitimer(ITIMER_PROF, &timer, NULL) != 0) return 2;
        execl("/proc/self/exe", argv[0], "check", (char *)NULL);
        return 3;
    }
    struct itimerval now;
    if (getitimer(ITIMER_PROF, &now) != 0) return 4;
    printf("itimer %s\n", now.it_value.tv_sec || now.it_value.tv_usec ? "armed" : "off");
    return 0;
}
