/* Case fork-storm: fork storms from several threads.
 *
 * The main thread and 5 more threads fork at the same moment (a barrier), round after round,
 * for 1.5 s of wall time. Each child burns 1-2 ms of CPU in nested calls and a leaf function
 * (so the sampling handler runs in it, frameless leaf included) and then leaves by one of
 * four ways, chosen by round and thread: exit(20); _exit(21); returning from its functions
 * (forked by the main thread: up to main, which returns 23; forked by another thread: up to
 * that thread's start routine, which calls exit(24) -- the child's only thread simply
 * returning is case pthread-exit); or forking a grandchild (which leaves by exit(30),
 * _exit(31) or returning: 33 / 34) and waiting for it (then exit(22)). Every parent checks
 * its child's exact status.
 * Checks: every child and grandchild leaves with the expected status; "forks ok", exit 0;
 * (harness) every process's trace is readable.
 *
 * Defect caught (issue 9, crash (a)): a forked child crashes with SIGSEGV in the sampling
 * handler (CodeRanges::range_holding in the frameless-leaf proof, on a freed unwind snapshot)
 * in 1-2 runs of 10 of this kind of program. */
#include "stress.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define FORKERS 6 /* the main thread and 5 others */
#define WALL_NS 1500000000ull

static pthread_barrier_t barrier;
static volatile int keep_going = 1;
static uint64_t end_ns;
static atomic_int failures, processes;

/* A little recursion so children have stacks of several frames. */
__attribute__((noinline)) static uint64_t nested(int depth, uint64_t ns) {
    if (depth == 0) {
        burn_thread_cpu(ns);
        return stress_sink;
    }
    uint64_t x = nested(depth - 1, ns);
    __asm__ volatile("" ::: "memory");
    return x + 1;
}

static void report(const char *who, int forker, int round, int mode, int status, int expected) {
    if (atomic_fetch_add(&failures, 1) >= 5) return;
    if (WIFSIGNALED(status))
        fprintf(stderr, "FAIL: %s of thread %d round %d (mode %d): killed by signal %d\n", who, forker, round, mode, WTERMSIG(status));
    else
        fprintf(stderr, "FAIL: %s of thread %d round %d (mode %d): exit %d, expected %d\n", who, forker, round, mode, WEXITSTATUS(status), expected);
}

/* Leaving the child process: returns 1 when the child must "return" (mode 2), else never
 * returns. `from_main`: the caller is the main thread's loop. */
static int child_leaves(int forker, int round, int from_main) {
    nested(8, 1000000ull + (uint64_t)(round % 4) * 300000ull);
    int mode = (forker + round) % 4;
    switch (mode) {
    case 0: exit(20);
    case 1: _exit(21);
    case 2: return 1;
    default: break;
    }
    /* mode 3: a grandchild */
    int grand_mode = round % 3;
    pid_t pid = fork();
    if (pid < 0) _exit(98);
    if (pid == 0) {
        nested(4, 1000000ull);
        if (grand_mode == 0) exit(30);
        if (grand_mode == 1) _exit(31);
        return 2; /* the grandchild returns too */
    }
    int status, expected = grand_mode == 0 ? 30 : grand_mode == 1 ? 31 : from_main ? 33 : 34;
    if (waitpid(pid, &status, 0) != pid) _exit(97);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != expected) {
        report("grandchild", forker, round, 3, status, expected);
        exit(99);
    }
    exit(22);
}

/* The fork loop of one thread. Returns 0 in the original process when the rounds are over;
 * in a child that leaves by returning, 1 (child) or 2 (grandchild). */
static int run_forker(int forker) {
    for (int round = 0;; round++) {
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) keep_going = mono_ns() < end_ns || round < 2;
        pthread_barrier_wait(&barrier);
        if (!keep_going) return 0;
        pid_t pid = fork();
        if (pid < 0) {
            atomic_fetch_add(&failures, 1);
            fprintf(stderr, "FAIL: fork: %s\n", strerror(errno));
            continue;
        }
        if (pid == 0) return child_leaves(forker, round, forker == 0);
        atomic_fetch_add(&processes, (forker + round) % 4 == 3 ? 2 : 1);
        int mode = (forker + round) % 4;
        int expected = mode == 0 ? 20 : mode == 1 ? 21 : mode == 2 ? (forker == 0 ? 23 : 24) : 22;
        int status;
        if (waitpid(pid, &status, 0) != pid) fail("waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != expected) report("child", forker, round, mode, status, expected);
    }
}

static void *forker_thread(void *arg) {
    int left = run_forker((int)(intptr_t)arg);
    if (left == 1) exit(24); /* a child that returned from its functions */
    if (left == 2) exit(34); /* a grandchild that did */
    return NULL;
}

int main(void) {
    end_ns = mono_ns() + WALL_NS;
    pthread_barrier_init(&barrier, NULL, FORKERS);
    pthread_t threads[FORKERS];
    for (int i = 1; i < FORKERS; i++)
        if (pthread_create(&threads[i], NULL, forker_thread, (void *)(intptr_t)i) != 0) fail("pthread_create");
    int left = run_forker(0);
    if (left == 1) return 23;
    if (left == 2) return 33;
    for (int i = 1; i < FORKERS; i++) pthread_join(threads[i], NULL);
    stat_line("processes %d", atomic_load(&processes) + 1);
    if (atomic_load(&failures)) {
        fprintf(stderr, "FAIL: %d children or grandchildren did not leave as expected\n", atomic_load(&failures));
        return 1;
    }
    printf("forks ok\n");
    return 0;
}
