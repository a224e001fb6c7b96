/* A preloaded interposer (before libsigtrace.so) that makes writes to sigtrace's trace files
 * fail in turn: of every three `write` or `writev` calls on a descriptor whose file name holds
 * ".sigtrace", the first fails with EINTR, the second writes only a third of its bytes (at least
 * one), the third goes through. Other descriptors are untouched. At exit it prints
 * "short_write: eintr=N short=M full=K" on stderr. (sigtrace's drain writes with libc's `write`,
 * the sampling handler's spills with `writev`; `pwrite` is not used for trace files.) The
 * `writev` path runs in a signal handler: it uses only system calls and no stdio. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
static writev_fn real_writev;

static unsigned long calls, eintr, shortened, full;

static int is_trace_file(int fd) {
    if (fd <= 2) return 0;
    char link[64] = "/proc/self/fd/", digits[16], target[4096];
    int n = 0, at = (int)strlen(link);
    do digits[n++] = (char)('0' + fd % 10); while ((fd /= 10) > 0);
    while (n > 0) link[at++] = digits[--n];
    link[at] = 0;
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) return 0;
    target[len] = 0;
    return strstr(target, ".sigtrace") != NULL;
}

enum fault { FAIL_EINTR, WRITE_A_THIRD, WRITE_ALL };

/* What this call to the trace file gets, in turn: EINTR (errno set), a third of its `total`
   bytes (when it has more than one), or all of them; counted. */
static enum fault next_fault(size_t total) {
    switch (__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED) % 3) {
    case 0:
        __atomic_fetch_add(&eintr, 1, __ATOMIC_RELAXED);
        errno = EINTR;
        return FAIL_EINTR;
    case 1:
        if (total > 1) {
            __atomic_fetch_add(&shortened, 1, __ATOMIC_RELAXED);
            return WRITE_A_THIRD;
        }
        return WRITE_ALL;
    default:
        __atomic_fetch_add(&full, 1, __ATOMIC_RELAXED);
        return WRITE_ALL;
    }
}

ssize_t write(int fd, const void *buffer, size_t count) {
    static write_fn real;
    if (!real) real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (count > 0 && is_trace_file(fd)) {
        switch (next_fault(count)) {
        case FAIL_EINTR: return -1;
        case WRITE_A_THIRD: return real(fd, buffer, count / 3 > 0 ? count / 3 : 1);
        case WRITE_ALL: break;
        }
    }
    return real(fd, buffer, count);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    if (count > 0 && count <= 16 && is_trace_file(fd)) {
        size_t total = 0;
        for (int i = 0; i < count; i++) total += iov[i].iov_len;
        switch (next_fault(total)) {
        case FAIL_EINTR: return -1;
        case WRITE_A_THIRD: {
            /* The first third of the bytes, cut across the buffers. */
            struct iovec part[16];
            size_t left = total / 3 > 0 ? total / 3 : 1;
            int parts = 0;
            for (int i = 0; i < count && left > 0; i++) {
                part[parts] = iov[i];
                if (part[parts].iov_len > left) part[parts].iov_len = left;
                left -= part[parts].iov_len;
                parts++;
            }
            return real_writev(fd, part, parts);
        }
        case WRITE_ALL: break;
        }
    }
    return real_writev(fd, iov, count);
}

/* Resolved before any signal handler can call writev. */
__attribute__((constructor)) static void resolve(void) {
    real_writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "short_write: eintr=%lu short=%lu full=%lu\n", eintr, shortened, full);
}
