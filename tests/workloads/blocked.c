/* A thread blocks in read() on a pipe and then in nanosleep while the main thread burns CPU.
 * Any EINTR seen by the blocked thread is printed; it prints its tid as "sleeper tid=T". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static int fds[2];

static void *sleeper(void *arg) {
    (void)arg;
    fprintf(stderr, "sleeper tid=%ld\n", (long)syscall(SYS_gettid));
    char byte;
    ssize_t got = read(fds[0], &byte, 1);
    if (got < 0) printf("read failed: %s\n", strerror(errno));
    struct timespec nap = {0, 300 * 1000 * 1000}, left;
    if (nanosleep(&nap, &left) != 0) printf("nanosleep failed: %s\n", strerror(errno));
    return NULL;
}

__attribute__((noinline)) static unsigned long burn(unsigned long n) {
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < n; i++) x += i * 7;
    return x;
}

int main(void) {
    if (pipe(fds) != 0) return 1;
    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, NULL);
    burn(600000000UL);
    if (write(fds[1], "x", 1) != 1) return 1;
    burn(200000000UL);
    pthread_join(thread, NULL);
    printf("blocked done\n");
    return 0;
}
