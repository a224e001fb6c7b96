/* An allocator interposed (LD_PRELOAD, before libsigtrace.so) for the handler test: it aborts
 * when malloc, calloc, realloc or free is called while sigtrace's sampling handler runs on the
 * calling thread, and counts the calls it checked. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern int sigtrace_in_signal_handler(void) __attribute__((weak));

static unsigned long checked;

static void check(void) {
    __atomic_add_fetch(&checked, 1, __ATOMIC_RELAXED);
    if (sigtrace_in_signal_handler && sigtrace_in_signal_handler()) {
        static const char message[] = "abort_malloc: allocation inside the sampling handler\n";
        write(2, message, sizeof message - 1);
        abort();
    }
}

void *malloc(size_t size) { check(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { check(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { check(); return __libc_realloc(p, size); }
void free(void *p) { check(); __libc_free(p); }

__attribute__((destructor)) static void report(void) {
    char line[128];
    int len = snprintf(line, sizeof line, "abort_malloc: linked=%d checked=%lu\n", sigtrace_in_signal_handler != 0, checked);
    write(2, line, len);
}
