/* The process ends when its last thread returns. The main thread starts a worker and calls
 * pthread_exit; the worker forks, and in the child its copy (the child's only thread) burns
 * argv[1] ms of CPU and returns from its start routine (child status 0). The worker checks the
 * child, burns argv[1] ms and returns: the process exits with status 0. Before the fix the
 * shim's drain thread kept both processes alive forever. Prints "child ok" and "worker done". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static double burn_ms;

static void burn(void) {
    volatile unsigned long sink = 0;
    long long start = thread_cpu_ns(), now = start;
    while (now - start < ms_to_ns(burn_ms)) {
        for (int i = 0; i < 20000; i++) sink += i;
        now = thread_cpu_ns();
    }
}

static void *worker(void *arg) {
    pid_t child = fork();
    if (child == 0) {
        burn();
        return arg; /* the child's last thread returns: exit status 0 */
    }
    int status = -1;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("child failed: 0x%x\n", status);
        exit(1);
    }
    printf("child ok\n");
    burn();
    printf("worker done\n");
    fflush(stdout);
    return arg;
}

int main(int argc, char **argv) {
    burn_ms = argc > 1 ? atof(argv[1]) : 100;
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    pthread_exit(NULL);
}
