/* Toggles sigtrace from a second thread (the toggle signal, SIGUSR2, sent to the process every
 * millisecond) while the main thread waits in epoll_wait and poll (50 ms each, nothing ready)
 * for WALL_MS of wall time. The sender blocks the signal while it sends it, so the kernel wakes
 * the waiting main thread for it, and unblocks it at once, so it often takes the signal itself
 * first: epoll_wait then fails with EINTR though no handler ran on its thread (poll is
 * restarted by the kernel). Counts the waits and those that failed with EINTR; prints
 * `waits=N eintr=N` on stdout. Run it under the shim with SIGTRACE_TOGGLE_SIGNAL=SIGUSR2 only
 * (without, SIGUSR2 ends it). Usage: toggled_waits WALL_MS */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "clocks.h"

static long long end_ns;

static void *toggler(void *unused) {
    (void)unused;
    struct timespec millisecond = {0, 1000000};
    sigset_t toggle;
    sigemptyset(&toggle);
    sigaddset(&toggle, SIGUSR2);
    while (monotonic_ns() < end_ns) {
        pthread_sigmask(SIG_BLOCK, &toggle, NULL);
        kill(getpid(), SIGUSR2);
        pthread_sigmask(SIG_UNBLOCK, &toggle, NULL);
        nanosleep(&millisecond, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    end_ns = monotonic_ns() + ms_to_ns(argc > 1 ? atof(argv[1]) : 1000);
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    int fds[2];
    if (epoll < 0 || pipe(fds)) return 1;
    struct epoll_event event = {.events = EPOLLIN};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, fds[0], &event)) return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, toggler, NULL)) return 1;
    long waits = 0, eintr = 0;
    while (monotonic_ns() < end_ns) {
        struct pollfd entry = {.fd = fds[0], .events = POLLIN};
        int results[2] = {epoll_wait(epoll, &event, 1, 50), 0};
        int epoll_errno = errno;
        results[1] = poll(&entry, 1, 50);
        waits += 2;
        eintr += (results[0] < 0 && epoll_errno == EINTR) + (results[1] < 0 && errno == EINTR);
    }
    pthread_join(thread, NULL);
    printf("waits=%ld eintr=%ld\n", waits, eintr);
    return 0;
}
