/* Case eintr: blocking system calls must never fail with EINTR because of the shim.
 *
 * The program installs no signal handler. Seven threads block, again and again for 1 s of
 * wall time, in: read on a pipe (a feeder thread writes a byte every 20 ms), poll, select,
 * epoll_wait and a raw futex wait (each with a 20 ms timeout), nanosleep (20 ms) and
 * pthread_cond_timedwait (20 ms); two more threads burn CPU all the time, so the sampling
 * timers fire at the configured rate. Each blocking call that fails with EINTR (or a
 * nanosleep that returns early) is counted. Checks: every count is 0 (printed, compared with
 * the run without the shim); exit 0.
 *
 * Defect caught: poll, select, epoll_wait, nanosleep and futex waits are never restarted
 * after a handler ran, whatever SA_RESTART says; a sampling signal delivered to a blocked
 * thread would show up here as EINTR, which the program never sees without the shim. */
#include "stress.h"
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>

#define WALL_NS 1000000000ull
#define WAIT_MS 20

enum { READ, POLL, SELECT, EPOLL, FUTEX, NANOSLEEP, CONDWAIT, KINDS };
static const char *names[KINDS] = {"read", "poll", "select", "epoll_wait", "futex", "nanosleep", "pthread_cond_timedwait"};
struct count {
    int kind;
    long calls, interrupted;
};
static struct count counts[KINDS];
static uint64_t end_ns;
static int pipe_fds[2];
static volatile int futex_word;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void *feeder(void *arg) {
    (void)arg;
    while (mono_ns() < end_ns) {
        sleep_ns(WAIT_MS * 1000000ull);
        if (write(pipe_fds[1], "x", 1) != 1) fail("pipe write");
    }
    close(pipe_fds[1]);
    return NULL;
}

static void *waiter(void *arg) {
    struct count *mine = arg;
    int kind = mine->kind;
    int epoll_fd = -1;
    if (kind == EPOLL) {
        int fds[2];
        if (pipe(fds) != 0) fail("pipe");
        epoll_fd = epoll_create1(0);
        struct epoll_event event = {.events = EPOLLIN};
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fds[0], &event);
    }
    while (mono_ns() < end_ns) {
        int result = 0;
        errno = 0;
        switch (kind) {
        case READ: {
            char byte;
            result = (int)read(pipe_fds[0], &byte, 1);
            if (result == 0) return NULL; /* feeder done */
            break;
        }
        case POLL: {
            struct pollfd none = {.fd = -1};
            result = poll(&none, 1, WAIT_MS);
            break;
        }
        case SELECT: {
            struct timeval tv = {0, WAIT_MS * 1000};
            result = select(0, NULL, NULL, NULL, &tv);
            break;
        }
        case EPOLL: {
            struct epoll_event event;
            result = epoll_wait(epoll_fd, &event, 1, WAIT_MS);
            break;
        }
        case FUTEX: {
            struct timespec ts = {0, WAIT_MS * 1000000L};
            result = (int)syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
            if (result < 0 && errno == ETIMEDOUT) result = 0;
            break;
        }
        case NANOSLEEP: {
            struct timespec ts = {0, WAIT_MS * 1000000L}, rem = {0, 0};
            result = nanosleep(&ts, &rem);
            break;
        }
        case CONDWAIT: {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += WAIT_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&mutex);
            int rc = pthread_cond_timedwait(&cond, &mutex, &ts);
            pthread_mutex_unlock(&mutex);
            if (rc == EINTR) {
                result = -1;
                errno = EINTR;
            }
            break;
        }
        }
        mine->calls++;
        if (result < 0 && errno == EINTR) mine->interrupted++;
        else if (result < 0) fail("%s: %s", names[kind], strerror(errno));
    }
    return NULL;
}

static void *burner(void *arg) {
    (void)arg;
    burn_until(end_ns);
    return NULL;
}

int main(void) {
    end_ns = mono_ns() + WALL_NS;
    if (pipe(pipe_fds) != 0) fail("pipe");
    pthread_t threads[KINDS + 3];
    int n = 0;
    for (int kind = 0; kind < KINDS; kind++) {
        counts[kind].kind = kind;
        pthread_create(&threads[n++], NULL, waiter, &counts[kind]);
    }
    pthread_create(&threads[n++], NULL, feeder, NULL);
    pthread_create(&threads[n++], NULL, burner, NULL);
    pthread_create(&threads[n++], NULL, burner, NULL);
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
    long total = 0;
    for (int kind = 0; kind < KINDS; kind++) {
        printf("%s: %ld EINTR\n", names[kind], counts[kind].interrupted);
        total += counts[kind].interrupted;
        stat_line("%s calls %ld", names[kind], counts[kind].calls);
    }
    return total ? 1 : 0;
}
