/* Case source-moves: threads that keep changing between computing and serving, so that
 * SIGTRACE_TIMER=auto moves them between perf events and POSIX timers again and again.
 *
 * Waves of 4 pairs of threads: each thread alternates 20 ms of its own CPU time in a leaf
 * function with 5 ms of wall time ping-ponging a byte with its partner over pipes, 6 times,
 * then exits. Waves follow one another for 1.5 s of wall time; halfway, the main thread forks
 * a child that runs one wave and leaves by _exit(5). The last wave is left running when the
 * main thread calls exit(0): the exit disarms every timer while the threads' handlers may be
 * moving them. Checks: every finished thread burned its CPU time; the child's status; "moves
 * ok", exit 0.
 *
 * Defect it guards against: a move (the handler closing one source and arming the other) that
 * races a disarm from another thread (exit, a reaped thread), a stale signal of the old source
 * counted, or a timer left armed after its thread's slot was reused. */
#include "stress.h"
#include <pthread.h>
#include <sys/wait.h>

#define PAIRS 4
#define ROUNDS 6
#define BURN_NS 20000000ull
#define SERVE_NS 5000000ull
#define WALL_NS 1500000000ull

struct pair {
    int ping[2], pong[2];
};

struct worker {
    struct pair *pair;
    int first; /* sends first */
};

static void *work(void *arg) {
    struct worker *w = arg;
    int out = w->first ? w->pair->ping[1] : w->pair->pong[1];
    int in = w->first ? w->pair->pong[0] : w->pair->ping[0];
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t start = thread_cpu_ns();
        burn_thread_cpu(BURN_NS);
        if (thread_cpu_ns() - start < BURN_NS) fail("a thread stopped burning early");
        /* Serve: the first thread decides when the round ends and tells its partner with 'e'. */
        char byte = 'x';
        if (w->first) {
            uint64_t end = mono_ns() + SERVE_NS;
            do {
                if (write(out, &byte, 1) != 1 || read(in, &byte, 1) != 1) fail("ping: %s", strerror(errno));
            } while (mono_ns() < end);
            byte = 'e';
            if (write(out, &byte, 1) != 1 || read(in, &byte, 1) != 1) fail("ping end: %s", strerror(errno));
        } else {
            do {
                if (read(in, &byte, 1) != 1 || write(out, &byte, 1) != 1) fail("pong: %s", strerror(errno));
            } while (byte != 'e');
        }
    }
    return NULL;
}

/* Starts a wave of PAIRS pairs; `join` waits for it. */
static void wave(int join) {
    static struct pair pairs[PAIRS];
    static struct worker workers[2 * PAIRS];
    pthread_t threads[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        if (pipe(pairs[i].ping) || pipe(pairs[i].pong)) fail("pipe: %s", strerror(errno));
        workers[2 * i] = (struct worker){&pairs[i], 1};
        workers[2 * i + 1] = (struct worker){&pairs[i], 0};
    }
    for (int i = 0; i < 2 * PAIRS; i++)
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) fail("pthread_create: %s", strerror(errno));
    if (!join) return;
    for (int i = 0; i < 2 * PAIRS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < PAIRS; i++) {
        close(pairs[i].ping[0]), close(pairs[i].ping[1]);
        close(pairs[i].pong[0]), close(pairs[i].pong[1]);
    }
}

int main(void) {
    uint64_t start = mono_ns(), end = start + WALL_NS;
    int waves = 0, forked = 0;
    do {
        if (!forked && mono_ns() > start + WALL_NS / 2) {
            forked = 1;
            pid_t child = fork();
            if (child < 0) fail("fork: %s", strerror(errno));
            if (child == 0) {
                wave(1);
                _exit(5);
            }
            int status;
            if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 5) fail("the child's status is %#x", status);
        }
        wave(1);
        waves++;
    } while (waves < 3 || mono_ns() < end);
    stat_line("waves %d", waves);
    printf("moves ok\n");
    fflush(stdout);
    wave(0); /* left running: exit disarms while they move */
    burn_thread_cpu(BURN_NS);
    exit(0);
}
