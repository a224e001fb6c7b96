/* The parent burns PARENT_MS (default 150) of its CPU time in parent_work(), forks 3 children
 * that each burn CHILD_MS (default 200) of their own in child_work(), burns PARENT_MS more, and
 * waits for them; child 2 then execs /bin/sh -c 'i=0; while [ $i -lt 200000 ]; do
 * i=$((i+1)); done'. Each process prints "pid=P cpu_ns=N" (its process CPU time) on stderr when
 * done. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "clocks.h"

static volatile unsigned long sink;

/* Each burns `ms` of the calling thread's CPU time. */
__attribute__((noinline)) static void parent_work(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i;
    } while (thread_cpu_ns() < until);
}
__attribute__((noinline)) static void child_work(long long ms) {
    long long until = thread_cpu_ns() + ms * NS_PER_MS;
    do {
        for (unsigned long i = 0; i < 100000; i++) sink += i * 3;
    } while (thread_cpu_ns() < until);
}

int main(int argc, char **argv) {
    long long parent_ms = argc > 1 ? atoll(argv[1]) : 150;
    long long child_ms = argc > 2 ? atoll(argv[2]) : 200;
    parent_work(parent_ms);
    for (int child = 0; child < 3; child++) {
        pid_t pid = fork();
        if (pid == 0) {
            child_work(child_ms);
            fprintf(stderr, "pid=%d cpu_ns=%lld\n", getpid(), process_cpu_ns());
            if (child == 2) {
                execl("/bin/sh", "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo shell done", (char *)NULL);
                return 99;
            }
            return 0;
        }
    }
    parent_work(parent_ms);
    int status, failures = 0;
    while (wait(&status) > 0) failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fprintf(stderr, "pid=%d cpu_ns=%lld\n", getpid(), process_cpu_ns());
    printf("forks done, %d failures\n", failures);
    return failures;
}
