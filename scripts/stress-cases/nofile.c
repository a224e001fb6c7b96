/* Case nofile: a tight RLIMIT_NOFILE with many threads.
 *
 * The program lowers its soft RLIMIT_NOFILE to 16 and re-executes itself (so the shim starts
 * under the limit, as after `ulimit -n 16`), starts 32 threads that each burn 30 ms of CPU and
 * stay alive, then opens /dev/null until open fails and prints how many it got (13 without
 * the shim: 16 minus stdin, stdout, stderr) and why the last one failed.
 * Checks: the same "opened at least 10 of 13 files" line as without the shim (compared by the
 * harness: sigtrace may hold at most 3 of the program's descriptors, it holds 1), exit 0.
 *
 * Defect caught (issue 9, descriptors taken): one perf descriptor per thread, so the program
 * opens 0 of its 13 files under the shim, and nothing is said. */
#include "stress.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>

#define THREADS 32
#define LIMIT 16

static pthread_barrier_t started, finish;

static void *worker(void *arg) {
    (void)arg;
    burn_thread_cpu(10000000ull);
    pthread_barrier_wait(&started);
    pthread_barrier_wait(&finish);
    burn_thread_cpu(5000000ull);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "limited") != 0) {
        struct rlimit limit;
        if (getrlimit(RLIMIT_NOFILE, &limit) != 0) fail("getrlimit");
        limit.rlim_cur = LIMIT;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail("setrlimit: %s", strerror(errno));
        char *again[] = {argv[0], "limited", NULL};
        execv("/proc/self/exe", again);
        fail("execv: %s", strerror(errno));
    }
    pthread_barrier_init(&started, NULL, THREADS + 1);
    pthread_barrier_init(&finish, NULL, THREADS + 1);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) fail("pthread_create");
    pthread_barrier_wait(&started);
    int opened[LIMIT * 4], count = 0, last_errno = 0;
    while (count < LIMIT * 4) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            last_errno = errno;
            break;
        }
        opened[count++] = fd;
    }
    /* sigtrace may hold at most 3 descriptors of a program this tight (it holds 1, its trace
     * file): 13 files without it, at least 10 with it. */
    printf("opened %s of %d files, then %s\n", count >= LIMIT - 3 - 3 ? "at least 10" : "fewer than 10", LIMIT - 3, last_errno == EMFILE ? "EMFILE" : strerror(last_errno));
    for (int i = 0; i < count; i++) close(opened[i]);
    pthread_barrier_wait(&finish);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("nofile ok\n");
    return 0;
}
