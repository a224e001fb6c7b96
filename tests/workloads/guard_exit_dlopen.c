/* One thread loops on dlopen/dlclose of libm and libz, two run malloc/free and stdio, and the
 * main thread calls exit(3) after argv[1] ms of wall time. Under the shim the handler walked a
 * freed unwind snapshot here (SIGSEGV in 5-7 runs of 10 before the fix). Prints "bye". */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clocks.h"

static void *load_and_unload(void *arg) {
    (void)arg;
    for (;;) {
        void *m = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        void *z = dlopen("libz.so.1", RTLD_NOW);
        if (z) dlclose(z);
        if (m) dlclose(m);
    }
    return NULL;
}

static void *allocate_and_print(void *arg) {
    FILE *sink = fopen("/dev/null", "w");
    unsigned seed = (unsigned)(size_t)arg;
    for (;;) {
        void *p = malloc(16 + rand_r(&seed) % 4096);
        fprintf(sink, "%p\n", p);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double ms = argc > 1 ? atof(argv[1]) : 200;
    pthread_t thread;
    pthread_create(&thread, NULL, load_and_unload, NULL);
    pthread_create(&thread, NULL, allocate_and_print, (void *)1);
    pthread_create(&thread, NULL, allocate_and_print, (void *)2);
    long long start = monotonic_ns();
    while (monotonic_ns() - start < ms_to_ns(ms)) {
    }
    printf("bye\n");
    exit(3);
}
