/* A program that closes low descriptors while its threads start: for argv[1] ms of wall time the
 * main thread starts a thread and, until the thread runs its body, closes every number from 3 to
 * 63 with the raw close_range system call (which no library call sees) and opens a file, each
 * time checking that the file it opened before is still behind its number. A new thread is where
 * sigtrace opens its perf event, at the lowest free number, before moving it high: the program's
 * close_range may take that number and its open get it back for the file. sigtrace must then
 * neither close nor use the number. Prints "files intact", or how many files were lost. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clocks.h"

static volatile int running;

static void *briefly(void *arg) {
    running = 1;
    return arg;
}

/* True when `fd` still refers to the file whose inode is `inode`. */
static int still_ours(int fd, ino_t inode) {
    struct stat now;
    return fstat(fd, &now) == 0 && now.st_ino == inode;
}

int main(int argc, char **argv) {
    long long wall_ns = ms_to_ns(argc > 1 ? atof(argv[1]) : 300);
    long long start = monotonic_ns();
    long threads = 0, opened = 0, lost = 0;
    while (monotonic_ns() - start < wall_ns) {
        pthread_t thread;
        running = 0;
        pthread_create(&thread, NULL, briefly, NULL);
        int fd = -1;
        ino_t inode = 0;
        do {
            if (fd >= 0 && !still_ours(fd, inode))
                lost++;
            syscall(SYS_close_range, 3u, 63u, 0);
            fd = open("probe.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            struct stat status;
            if (fd < 0 || fstat(fd, &status) != 0)
                lost++;
            else
                inode = status.st_ino;
            opened++;
        } while (!running);
        pthread_join(thread, NULL);
        if (fd >= 0 && !still_ours(fd, inode))
            lost++;
        close(fd);
        threads++;
    }
    if (lost)
        printf("lost %ld of %ld files\n", lost, opened);
    else
        printf("files intact\n");
    fprintf(stderr, "threads=%ld files=%ld\n", threads, opened);
    return 0;
}
