/* Burns argv[1] ms of CPU, installs a seccomp filter that kills the process on perf_event_open
 * and timer_create (through prctl, or syscall(SYS_seccomp) with argv[2] = "syscall"), then
 * starts 8 threads that burn and print. Under the shim the new threads' timers met the filter
 * and the program died of SIGSYS (exit 159). With argv[2] = "exec" it execs `echo` after the
 * filter is in: the filter survives the exec, and sigtrace must not start in the new image. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static double burn_ms;

static void *burn(void *arg) {
    volatile unsigned long sink = 0;
    long long start = thread_cpu_ns();
    while (thread_cpu_ns() - start < ms_to_ns(burn_ms))
        for (int i = 0; i < 20000; i++) sink += i;
    return arg;
}

int main(int argc, char **argv) {
    burn_ms = argc > 1 ? atof(argv[1]) : 100;
    burn(NULL);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_timer_create, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 2;
    int installed = argc > 2 && strcmp(argv[2], "syscall") == 0 ? syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program)
                                                                  : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
    if (installed != 0) return 3;
    if (argc > 2 && strcmp(argv[2], "exec") == 0) {
        execl("/bin/echo", "echo", "exec ran", (char *)NULL);
        return 4;
    }
    pthread_t threads[8];
    for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, burn, NULL);
    for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
    printf("sandboxed and done\n");
    return 0;
}
