/* A preloaded interposer (before libsigtrace.so) that refuses perf events as a kernel with
 * perf_event_paranoid 3 does: libc's `syscall` fails SYS_perf_event_open with EACCES (sigtrace
 * opens its events through it) and forwards every other call unchanged. At exit it prints
 * "no_perf: refused=N" on stderr. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>

typedef long (*syscall_fn)(long, ...);

static unsigned long refused;

long syscall(long number, ...) {
    static syscall_fn real;
    if (!real) real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
    if (number == SYS_perf_event_open) {
        __atomic_fetch_add(&refused, 1, __ATOMIC_RELAXED);
        errno = EACCES;
        return -1;
    }
    va_list args;
    va_start(args, number);
    long a = va_arg(args, long), b = va_arg(args, long), c = va_arg(args, long);
    long d = va_arg(args, long), e = va_arg(args, long), f = va_arg(args, long);
    va_end(args);
    return real(number, a, b, c, d, e, f);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "no_perf: refused=%lu\n", refused);
}
