/* Case exit-dlopen: a thread calls exit() while the others are busy.
 *
 * Two threads malloc/free blocks of varied sizes, one fprintf's to a file (stdio.log in the
 * current folder), three dlopen("libm.so.6")/dlsym/dlclose in a loop (this program is not
 * linked with libm, so each dlopen maps it and each dlclose unmaps it), one burns CPU; after
 * 800 ms of wall time one more thread prints "exiting" and calls exit(0) while all of them
 * are still running. Checks: exit status 0 and exactly "exiting" on stdout (a worker that
 * is still running after 20 s reports a failure).
 *
 * Defect caught (issue 9, crash (b)): SIGSEGV in the sampling handler, in framehop's
 * find_module_for_address on a freed module array, in 5-7 runs of 10 within 0.1-0.4 s.
 * (Seen here: the crash comes while dlopen/dlclose run, before exit(); the interrupted thread
 * is any of them: malloc, the CPU burner, the main thread in lazy symbol binding.) */
#include "stress.h"
#include <dlfcn.h>
#include <pthread.h>

#define EXIT_AFTER_NS 800000000ull
#define GIVE_UP_NS 20000000000ull

static uint64_t give_up_ns;

static void check_time(void) {
    if (mono_ns() > give_up_ns) fail("exit() did not end the process");
}

static void *mallocer(void *arg) {
    uint64_t seed = (uint64_t)(intptr_t)arg * 7919 + 1;
    void *blocks[64] = {0};
    for (;;) {
        for (int i = 0; i < 64; i++) {
            seed = seed * 6364136223846793005ull + 1;
            free(blocks[i]);
            size_t size = 16 + (size_t)(seed >> 40) % 65536;
            blocks[i] = malloc(size);
            if (!blocks[i]) fail("malloc");
            memset(blocks[i], (int)i, size < 256 ? size : 256);
        }
        check_time();
    }
    return NULL;
}

static void *stdio_writer(void *arg) {
    (void)arg;
    FILE *f = fopen("stdio.log", "w");
    if (!f) fail("fopen stdio.log: %s", strerror(errno));
    for (unsigned long line = 0;; line++) {
        fprintf(f, "line %lu: the quick brown fox jumps over the lazy dog %g\n", line, (double)line / 7.0);
        if (line % 256 == 0) {
            fflush(f);
            check_time();
        }
    }
    return NULL;
}

static void *dl_loop(void *arg) {
    (void)arg;
    for (;;) {
        void *handle = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (!handle) fail("dlopen libm.so.6: %s", dlerror());
        double (*cosine)(double) = (double (*)(double))dlsym(handle, "cos");
        if (!cosine) fail("dlsym cos");
        stress_sink += (uint64_t)(cosine(0.5) * 1000.0);
        dlclose(handle);
        check_time();
    }
    return NULL;
}

static void *burner(void *arg) {
    (void)arg;
    for (;;) {
        burn_thread_cpu(5000000ull);
        check_time();
    }
    return NULL;
}

static void *exiter(void *arg) {
    (void)arg;
    sleep_ns(EXIT_AFTER_NS);
    static const char line[] = "exiting\n";
    if (write(1, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) fail("write");
    exit(0);
}

int main(void) {
    give_up_ns = mono_ns() + GIVE_UP_NS;
    void *(*bodies[])(void *) = {mallocer, mallocer, stdio_writer, dl_loop, dl_loop, dl_loop, burner, exiter};
    pthread_t threads[sizeof bodies / sizeof bodies[0]];
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        if (pthread_create(&threads[i], NULL, bodies[i], (void *)(intptr_t)i) != 0) fail("pthread_create");
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) pthread_join(threads[i], NULL);
    fail("all threads returned");
}
