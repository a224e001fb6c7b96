/* Case pthread-exit: a process ends when its last thread returns.
 *
 * The main thread starts a worker and leaves with pthread_exit(). The worker forks; in the
 * child, the worker's copy is the only thread: it burns 50 ms of CPU and returns from its
 * start routine, which ends the child with status 0. The worker checks that status, prints
 * "child ok", burns 200 ms of CPU, prints "worker done" and returns: the last thread of the
 * process has ended, so the process exits with status 0 (POSIX).
 * Checks: exit status 0, "child ok" and "worker done", within the time bound.
 *
 * Defect caught (found by this harness; not in issue 9's list): the shim's own drain thread
 * keeps the process alive after the program's last thread has ended, so it never exits: its
 * main thread a zombie, the drain thread polling forever, its parent waiting forever. */
#include "stress.h"
#include <pthread.h>
#include <sys/wait.h>

static void *worker(void *arg) {
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        burn_thread_cpu(50000000ull);
        return arg; /* the child's last thread returns: exit status 0 */
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) fail("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("child: status 0x%x, expected exit 0", status);
    printf("child ok\n");
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
