/* Case daemon-fds: a daemon that closes every descriptor above 2, then opens its own files.
 *
 * Four threads start and burn CPU; the main thread burns 30 ms, then closes every descriptor
 * from 3 up (close_range, or a close() loop up to RLIMIT_NOFILE where close_range is missing)
 * and opens eight log files log0..log7, which get the lowest numbers, i.e. the numbers the
 * shim's trace file and perf events had. Each thread then writes 20 known lines into two of
 * the files, burning 5 ms of CPU between lines, and exits; the main thread adds a last line
 * to every file, closes them (close must succeed), and reads them back: each must hold
 * exactly the lines written. Every problem is reported (FAIL lines on stderr), then exit 1. `daemon_fds --verify` (run by the harness after the traced run,
 * without the shim) checks the files again, which catches bytes written at exit.
 * Checks: "daemon ok", exit 0, files intact during the run and after exit.
 *
 * Defect caught (issue 9, descriptor reuse): the shim keeps writing generations into "its"
 * descriptor number, now the program's log file (trace bytes inside the log); a thread's
 * exit closes "its" perf descriptor number, now one of the program's files (EBADF). */
#include "stress.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define THREADS 4
#define FILES 8
#define LINES 20

static int fds[FILES];
static volatile int files_open;
static int problems;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reports a problem on stderr and goes on (so one run shows every symptom). */
__attribute__((format(printf, 1, 2))) static void problem(const char *format, ...) {
    va_list args;
    va_start(args, format);
    pthread_mutex_lock(&report_lock);
    if (problems++ < 40) {
        fputs("FAIL: ", stderr);
        vfprintf(stderr, format, args);
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&report_lock);
    va_end(args);
}

static void expected_line(char *out, size_t size, int file, int line) {
    if (line < LINES)
        snprintf(out, size, "log %d line %d: written by thread %d\n", file, line, file / 2);
    else
        snprintf(out, size, "log %d: closed by main\n", file);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    while (!files_open) burn_thread_cpu(1000000ull);
    for (int line = 0; line < LINES; line++) {
        for (int k = 0; k < 2; k++) {
            int file = id * 2 + k;
            char text[128];
            expected_line(text, sizeof text, file, line);
            if (write(fds[file], text, strlen(text)) != (ssize_t)strlen(text))
                problem("thread %d: write to log%d (fd %d): %s", id, file, fds[file], strerror(errno));
        }
        burn_thread_cpu(5000000ull);
    }
    return NULL;
}

/* Checks every file; reports each one that differs. */
static void verify(void) {
    for (int file = 0; file < FILES; file++) {
        char name[32], expected[8192] = "", actual[16384];
        snprintf(name, sizeof name, "log%d", file);
        size_t len = 0;
        for (int line = 0; line <= LINES; line++) {
            expected_line(expected + len, sizeof expected - len, file, line);
            len += strlen(expected + len);
        }
        int fd = open(name, O_RDONLY);
        if (fd < 0) {
            problem("open %s: %s", name, strerror(errno));
            continue;
        }
        ssize_t got = 0, n;
        while (got < (ssize_t)sizeof actual && (n = read(fd, actual + got, sizeof actual - (size_t)got)) > 0) got += n;
        close(fd);
        if (got != (ssize_t)len || memcmp(actual, expected, len) != 0) {
            size_t at = 0;
            while (at < len && (ssize_t)at < got && actual[at] == expected[at]) at++;
            problem("%s holds %zd%s bytes, expected %zu; they differ from byte %zu on (%s)", name, got,
                    got == (ssize_t)sizeof actual ? "+" : "", len, at,
                    got > (ssize_t)len ? "bytes the program did not write" : "lines the program wrote are missing");
        }
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--verify") == 0) {
        verify();
        if (problems) return 1;
        printf("files intact\n");
        return 0;
    }
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) != 0) fail("pthread_create");
    burn_thread_cpu(30000000ull);

    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
        if (errno != ENOSYS) fail("close_range: %s", strerror(errno));
        struct rlimit limit;
        getrlimit(RLIMIT_NOFILE, &limit);
        for (rlim_t fd = 3; fd < limit.rlim_cur; fd++) close((int)fd);
    }
    for (int file = 0; file < FILES; file++) {
        char name[32];
        snprintf(name, sizeof name, "log%d", file);
        fds[file] = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fds[file] < 0) fail("open %s: %s", name, strerror(errno));
    }
    files_open = 1;
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    burn_thread_cpu(30000000ull);
    for (int file = 0; file < FILES; file++) {
        char text[128];
        expected_line(text, sizeof text, file, LINES);
        if (write(fds[file], text, strlen(text)) != (ssize_t)strlen(text)) problem("main: write to log%d (fd %d): %s", file, fds[file], strerror(errno));
        if (close(fds[file]) != 0) problem("main: close log%d (fd %d): %s", file, fds[file], strerror(errno));
    }
    verify();
    if (problems) return 1;
    printf("daemon ok\n");
    return 0;
}
