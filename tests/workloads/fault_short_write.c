/* A preloaded interposer (before libsigtrace.so) that makes writes to sigtrace's trace files
 * fail in turn: of every three `write` calls on a descriptor whose file name holds ".sigtrace",
 * the first fails with EINTR, the second writes only a third of its bytes (at least one), the
 * third goes through. Other descriptors are untouched. At exit it prints
 * "short_write: eintr=N short=M full=K" on stderr. (sigtrace writes with libc's `write`; `pwrite`
 * and `writev` are not used for trace files.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);

static unsigned long calls, eintr, shortened, full;

static int is_trace_file(int fd) {
    if (fd <= 2) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) return 0;
    target[len] = 0;
    return strstr(target, ".sigtrace") != NULL;
}

ssize_t write(int fd, const void *buffer, size_t count) {
    static write_fn real;
    if (!real) real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (count > 0 && is_trace_file(fd)) {
        switch (__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED) % 3) {
        case 0:
            __atomic_fetch_add(&eintr, 1, __ATOMIC_RELAXED);
            errno = EINTR;
            return -1;
        case 1:
            if (count > 1) {
                __atomic_fetch_add(&shortened, 1, __ATOMIC_RELAXED);
                return real(fd, buffer, count / 3 > 0 ? count / 3 : 1);
            }
            break;
        default:
            __atomic_fetch_add(&full, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    return real(fd, buffer, count);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "short_write: eintr=%lu short=%lu full=%lu\n", eintr, shortened, full);
}
