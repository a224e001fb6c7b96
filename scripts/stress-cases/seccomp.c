/* Case seccomp: a program that sandboxes itself.
 *
 * The program sets PR_SET_NO_NEW_PRIVS and installs a seccomp filter (prctl PR_SET_SECCOMP,
 * SECCOMP_MODE_FILTER) that kills the process (SECCOMP_RET_KILL_PROCESS) on perf_event_open
 * and timer_create, and on any architecture other than x86_64, and allows everything else.
 * Then it starts 8 threads that each burn 50 ms of CPU, and prints one line per thread.
 * Checks: exit 0 and the same output as without the shim.
 *
 * Defect caught (issue 9, sandbox): the shim arms each new thread's timer with perf_event_open
 * or timer_create inside the sandbox, and the kernel kills the process with SIGSYS (exit 159). */
#include "stress.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define THREADS 8

static void *worker(void *arg) {
    burn_thread_cpu(50000000ull);
    return arg;
}

int main(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_timer_create, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    burn_thread_cpu(20000000ull);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) fail("PR_SET_SECCOMP: %s", strerror(errno));
    printf("sandboxed\n");
    fflush(stdout);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) != 0) fail("pthread_create");
    for (int i = 0; i < THREADS; i++) {
        void *result;
        pthread_join(threads[i], &result);
        printf("thread %d ok\n", (int)(intptr_t)result);
    }
    burn_thread_cpu(20000000ull);
    printf("seccomp ok\n");
    return 0;
}
