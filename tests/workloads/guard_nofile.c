/* Run with a tight RLIMIT_NOFILE: starts 32 threads that burn argv[1] ms of CPU each, opens
 * /dev/null until refused, and prints how many it opened and how many open descriptors above
 * 2 are not its own (sigtrace's). Before the fix each thread's perf event took one of them. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static double burn_ms;

static void *burn(void *arg) {
    (void)arg;
    volatile unsigned long sink = 0;
    long long start = thread_cpu_ns();
    while (thread_cpu_ns() - start < ms_to_ns(burn_ms))
        for (int i = 0; i < 20000; i++) sink += i;
    return NULL;
}

int main(int argc, char **argv) {
    burn_ms = argc > 1 ? atof(argv[1]) : 100;
    pthread_t threads[32];
    for (int i = 0; i < 32; i++) pthread_create(&threads[i], NULL, burn, NULL);
    int mine[4096], opened = 0;
    for (int fd; opened < 4096 && (fd = open("/dev/null", O_RDONLY)) >= 0;) mine[opened++] = fd;
    for (int i = 0; i < 32; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < opened; i++) close(mine[i]);
    int foreign = 0;
    DIR *dir = opendir("/proc/self/fd");
    for (struct dirent *entry; dir && (entry = readdir(dir));) {
        int fd = atoi(entry->d_name);
        if (entry->d_name[0] != '.' && fd > 2 && fd != dirfd(dir)) foreign++;
    }
    if (dir) closedir(dir);
    printf("opened %d\n", opened);
    fprintf(stderr, "foreign_descriptors=%d\n", foreign);
    return 0;
}
