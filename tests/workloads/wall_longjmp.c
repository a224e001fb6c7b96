/* A blocking read left by siglongjmp from a SIGALRM handler (no return from the interposed
 * call is ever seen), then argv[1] ms of CPU in burn_after_the_jump() without any interposed
 * call: wall-clock mode must see it running, not still blocked in read. Prints "jumped". */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static sigjmp_buf back;
static volatile unsigned long sink;

static void on_alarm(int signal) {
    (void)signal;
    siglongjmp(back, 1);
}

__attribute__((noinline)) static void burn_after_the_jump(double ms) {
    long long end = thread_cpu_ns() + ms_to_ns(ms);
    while (thread_cpu_ns() < end)
        for (int i = 0; i < 1000; i++) sink += i;
}

__attribute__((noinline)) static void wait_for_the_alarm(int fd) {
    char byte;
    if (read(fd, &byte, 1) >= 0) puts("read returned");
}

int main(int argc, char **argv) {
    double ms = argc > 1 ? atof(argv[1]) : 1500;
    int fds[2];
    if (pipe(fds) != 0) return 1;
    signal(SIGALRM, on_alarm);
    struct itimerval once = {{0, 0}, {0, 300 * 1000}};
    if (sigsetjmp(back, 1) == 0) {
        setitimer(ITIMER_REAL, &once, NULL);
        wait_for_the_alarm(fds[0]);
    }
    burn_after_the_jump(ms);
    puts("jumped");
    return 0;
}
