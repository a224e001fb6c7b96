/* Case pthread-exit: the process ends when its last thread returns.
 *
 * The main thread starts a worker and leaves with pthread_exit(); the worker burns 200 ms of
 * CPU, prints "worker done" and returns. POSIX: when the last thread of the program ends, the
 * process exits with status 0. (A forked child whose only thread returns from its start
 * routine ends the same way; see fork-storm.)
 * Checks: exit status 0, "worker done", within the time bound.
 *
 * Defect caught (found by this harness, not listed in issue 9): the shim's own drain thread
 * keeps the process alive after the program's last thread has ended, so the process never
 * exits (its main thread a zombie, the drain thread polling forever) and its parent waits
 * forever. */
#include "stress.h"
#include <pthread.h>

static void *worker(void *arg) {
    burn_thread_cpu(200000000ull);
    printf("worker done\n");
    fflush(stdout);
    return arg;
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0) fail("pthread_create");
    pthread_exit(NULL);
}
