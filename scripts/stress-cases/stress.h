/* Shared helpers of the stress cases (the C programs of scripts/stress-cases): clocks, CPU burning sized by
 * the thread's own CPU clock (never by iteration counts), and failure reporting.
 *
 * Every case prints only deterministic lines on stdout/stderr (the harness compares them with
 * a run without the shim) and reports a problem by printing "FAIL: ..." on stderr and exiting
 * non-zero. Numbers that vary from run to run go to the file named by $STRESS_STATS, if set. */
#ifndef STRESS_H
#define STRESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static inline uint64_t thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
static inline uint64_t process_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

/* A leaf function that does a little arithmetic; kept out of line so it shows in stacks and
 * so the frameless-leaf path of the unwinder is exercised. */
__attribute__((noinline, unused)) static uint64_t stress_leaf(uint64_t x) {
    for (int i = 0; i < 64; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

static volatile uint64_t stress_sink;

/* Burns `ns` of this thread's CPU time. */
__attribute__((noinline, unused)) static void burn_thread_cpu(uint64_t ns) {
    uint64_t end = thread_cpu_ns() + ns, x = ns;
    do {
        for (int i = 0; i < 16; i++) x = stress_leaf(x);
    } while (thread_cpu_ns() < end);
    stress_sink += x;
}

/* Burns CPU until the monotonic clock reaches `deadline_ns`. */
__attribute__((noinline, unused)) static void burn_until(uint64_t deadline_ns) {
    uint64_t x = deadline_ns;
    do {
        for (int i = 0; i < 16; i++) x = stress_leaf(x);
    } while (mono_ns() < deadline_ns);
    stress_sink += x;
}

__attribute__((unused)) static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

__attribute__((format(printf, 1, 2), noreturn, unused)) static void fail(const char *format, ...) {
    char line[512];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (n < 0) n = 0;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* write(2), not stdio: fail() may be called from any thread at any time. */
    ssize_t unused = write(2, "FAIL: ", 6);
    unused = write(2, line, (size_t)n);
    (void)unused;
    _exit(1);
}

/* Appends one line to $STRESS_STATS (run-to-run varying figures, read by the harness). */
__attribute__((format(printf, 1, 2), unused)) static void stat_line(const char *format, ...) {
    const char *path = getenv("STRESS_STATS");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list args;
    va_start(args, format);
    vfprintf(f, format, args);
    va_end(args);
    fputc('\n', f);
    fclose(f);
}

#endif
