/* Case threads-storm: many threads started at once.
 *
 * Waves of 32 threads are released together by a barrier; each burns 10 ms of its own CPU
 * time in a leaf function and exits; waves follow one another for 1.5 s of wall time (at
 * least 2 waves). Checks: every thread finishes its CPU time, the program exits 0 with
 * "threads ok".
 *
 * Defect caught (issue 9, "signal storm"): the per-thread perf event is enabled with a random
 * first period that can be tiny; the first overflow then arrives inside
 * ioctl(PERF_EVENT_IOC_ENABLE) before the shim has published the descriptor, the short period
 * is never replaced, and the thread spends all its time in the sampling handler (100% CPU,
 * SIGPROF pending and blocked): the run never ends and the harness kills it at its time bound.
 * Each thread start is one more chance, hence many short threads rather than a few long ones. */
#include "stress.h"
#include <pthread.h>

#define THREADS 32
#define THREAD_CPU_NS 10000000ull
#define WALL_NS 1500000000ull

static pthread_barrier_t start_line;

static void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&start_line);
    uint64_t start = thread_cpu_ns();
    burn_thread_cpu(THREAD_CPU_NS);
    if (thread_cpu_ns() - start < THREAD_CPU_NS) fail("a thread returned before burning its CPU time");
    return NULL;
}

int main(void) {
    uint64_t end = mono_ns() + WALL_NS;
    int waves = 0;
    do {
        pthread_t threads[THREADS];
        pthread_barrier_init(&start_line, NULL, THREADS);
        for (int i = 0; i < THREADS; i++)
            if (pthread_create(&threads[i], NULL, worker, NULL) != 0) fail("pthread_create: %s", strerror(errno));
        for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&start_line);
        waves++;
    } while (waves < 2 || mono_ns() < end);
    stat_line("waves %d threads %d", waves, waves * THREADS);
    printf("threads ok\n");
    return 0;
}
