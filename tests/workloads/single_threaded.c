/* A program that stays single-threaded, then starts threads: the most tasks /proc/self/task
 * listed while it had one thread, a forked child's view, and the CPU time of each phase.
 *   single_threaded PHASE_MS
 * 1. burns PHASE_MS of CPU in slices of 20 ms, each followed by a 1 ms nanosleep (a safe point
 *    of sigtrace's), counting the entries of /proc/self/task after each slice;
 * 2. forks a child that counts its own tasks, burns 100 ms and exits 0;
 * 3. starts two threads that each burn PHASE_MS, and counts the tasks while they run.
 * Prints on stderr: single_max_tasks=N child_tasks=N threaded_tasks=N main_cpu_ns=N and
 * T cpu_ns=N per thread (T = its tid).
 *   single_threaded PHASE_MS loop
 * only burns PHASE_MS of CPU with no waiting call at all (no safe point: only sigtrace's
 * handler runs), counting its tasks every 20 ms, and prints single_max_tasks, main_cpu_ns and
 * voluntary_switches (the thread's, from getrusage).
 *   single_threaded PHASE_MS rejoin
 * starts two threads that each burn PHASE_MS, joins them, then waits (10 ms sleeps, at most
 * 2 s) until /proc/self/task lists one task, burns PHASE_MS with no waiting call and counts
 * its tasks again; prints rejoined_tasks (the count the wait ended on), final_tasks,
 * main_cpu_ns and T cpu_ns=N per thread. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static volatile unsigned long sink;
static long long phase_ns;

static int count_tasks(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -1;
    int count = 0;
    for (struct dirent *entry; (entry = readdir(dir));)
        if (entry->d_name[0] != '.') count++;
    closedir(dir);
    return count;
}

__attribute__((noinline)) static void burn_single(long long ns) {
    long long until = thread_cpu_ns() + ns;
    while (thread_cpu_ns() < until)
        for (int i = 0; i < 10000; i++) sink += i;
}

__attribute__((noinline)) static void *burn_threaded(void *unused) {
    (void)unused;
    long long until = thread_cpu_ns() + phase_ns;
    while (thread_cpu_ns() < until)
        for (int i = 0; i < 10000; i++) sink += i;
    fprintf(stderr, "T%ld cpu_ns=%lld\n", (long)syscall(SYS_gettid), thread_cpu_ns());
    return NULL;
}

int main(int argc, char **argv) {
    phase_ns = ms_to_ns(argc > 1 ? atof(argv[1]) : 300);
    int single_max = 0;
    struct timespec pause = {0, 1000000};
    if (argc > 2 && !strcmp(argv[2], "loop")) {
        for (long long done = 0; done < phase_ns; done += 20 * NS_PER_MS) {
            burn_single(20 * NS_PER_MS);
            int tasks = count_tasks();
            if (tasks > single_max) single_max = tasks;
        }
        struct rusage usage;
        getrusage(RUSAGE_THREAD, &usage);
        fprintf(stderr, "single_max_tasks=%d\nmain_cpu_ns=%lld\nvoluntary_switches=%ld\n", single_max, thread_cpu_ns(), usage.ru_nvcsw);
        return 0;
    }
    for (long long done = 0; done < phase_ns; done += 20 * NS_PER_MS) {
        burn_single(20 * NS_PER_MS);
        nanosleep(&pause, NULL);
        int tasks = count_tasks();
        if (tasks > single_max) single_max = tasks;
    }
    if (argc > 2 && !strcmp(argv[2], "rejoin")) {
        pthread_t workers[2];
        for (int i = 0; i < 2; i++) pthread_create(&workers[i], NULL, burn_threaded, NULL);
        for (int i = 0; i < 2; i++) pthread_join(workers[i], NULL);
        struct timespec tick = {0, 10000000};
        int tasks = count_tasks();
        for (int waited = 0; tasks != 1 && waited < 200; waited++) {
            nanosleep(&tick, NULL);
            tasks = count_tasks();
        }
        long long before = thread_cpu_ns();
        burn_single(phase_ns);
        fprintf(stderr, "rejoined_tasks=%d\nfinal_tasks=%d\nmain_cpu_ns=%lld\nlast_phase_cpu_ns=%lld\n", tasks, count_tasks(),
                thread_cpu_ns(), thread_cpu_ns() - before);
        return 0;
    }
    pid_t child = fork();
    if (child == 0) {
        int tasks = count_tasks();
        burn_single(100 * NS_PER_MS);
        _exit(tasks == 1 ? 0 : 10 + tasks);
    }
    int status = 0;
    waitpid(child, &status, 0);
    long long main_cpu = thread_cpu_ns();
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, burn_threaded, NULL);
    int threaded = count_tasks();
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    fprintf(stderr, "single_max_tasks=%d\nchild_status=%d\nthreaded_tasks=%d\nmain_cpu_ns=%lld\n", single_max,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, threaded, main_cpu);
    return 0;
}
