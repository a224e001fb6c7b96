/* The parent burns in parent_work(), forks 3 children that burn in child_work(); child 2 then
 * execs /bin/sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'. Each process prints
 * "pid=P cpu_ns=N" on stderr when done. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static long long cpu_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

__attribute__((noinline)) static void parent_work(unsigned long n) { for (unsigned long i = 0; i < n; i++) sink += i; }
__attribute__((noinline)) static void child_work(unsigned long n) { for (unsigned long i = 0; i < n; i++) sink += i * 3; }

int main(void) {
    parent_work(300000000UL);
    for (int child = 0; child < 3; child++) {
        pid_t pid = fork();
        if (pid == 0) {
            child_work(400000000UL);
            fprintf(stderr, "pid=%d cpu_ns=%lld\n", getpid(), cpu_ns());
            if (child == 2) {
                execl("/bin/sh", "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo shell done", (char *)NULL);
                return 99;
            }
            return 0;
        }
    }
    parent_work(300000000UL);
    int status, failures = 0;
    while (wait(&status) > 0) failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fprintf(stderr, "pid=%d cpu_ns=%lld\n", getpid(), cpu_ns());
    printf("forks done, %d failures\n", failures);
    return failures;
}
