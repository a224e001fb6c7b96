/* Case spawn-storm: many processes started at once.
 *
 * Waves of 16 children are forked together and each execs this program again ("child"), so
 * every child is a fresh image in which the shim starts from its constructor; a child burns
 * 5 ms of CPU and exits 0. Waves follow one another for 1.5 s of wall time (at least 2).
 * Checks: every child exits 0, the program exits 0 with "spawn ok".
 *
 * Defect caught (issue 9, "signal storm"): the same storm as threads-storm, seen most often
 * on a process's main thread right after start-up (shells, make, find | wc): the main thread
 * sits in the sampling handler at 100% CPU with SIGPROF pending and blocked, before main();
 * the run never ends and the harness kills it at its time bound. */
#include "stress.h"
#include <sys/wait.h>

#define CHILDREN 16
#define CHILD_CPU_NS 5000000ull
#define WALL_NS 1500000000ull

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        burn_thread_cpu(CHILD_CPU_NS);
        return 0;
    }
    uint64_t end = mono_ns() + WALL_NS;
    int waves = 0, failures = 0;
    do {
        pid_t pids[CHILDREN];
        for (int i = 0; i < CHILDREN; i++) {
            pids[i] = fork();
            if (pids[i] < 0) fail("fork: %s", strerror(errno));
            if (pids[i] == 0) {
                char *child_argv[] = {argv[0], "child", NULL};
                execv("/proc/self/exe", child_argv);
                _exit(127);
            }
        }
        for (int i = 0; i < CHILDREN; i++) {
            int status;
            if (waitpid(pids[i], &status, 0) != pids[i]) fail("waitpid: %s", strerror(errno));
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (failures++ < 5) {
                    if (WIFSIGNALED(status))
                        fprintf(stderr, "FAIL: child (wave %d) killed by signal %d\n", waves, WTERMSIG(status));
                    else
                        fprintf(stderr, "FAIL: child (wave %d) exited %d\n", waves, WEXITSTATUS(status));
                }
            }
        }
        waves++;
    } while (waves < 2 || mono_ns() < end);
    /* One trace per image: the parent, each forked child (ends at its exec), each exec'd image. */
    stat_line("waves %d processes %d images %d", waves, waves * CHILDREN + 1, 2 * waves * CHILDREN + 1);
    if (failures) {
        fprintf(stderr, "FAIL: %d children failed\n", failures);
        return 1;
    }
    printf("spawn ok\n");
    return 0;
}
