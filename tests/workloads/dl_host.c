/* Loads ./libburn.so after start-up, burns LIBRARY_MS (default 200) of its CPU time in it
 * (burn_outer -> burn_inner, built without frame pointers), unloads it, then burns AFTER_MS
 * (default 150) in its own loop. Prints the CPU time of each phase on stderr
 * (library_cpu_ns=N, after_unload_cpu_ns=N). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void after_unload(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 1000000; i++) sink += i;
    } while (thread_cpu_ns() < until_ns);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "./libburn.so";
    unsigned long library_ms = argc > 2 ? strtoul(argv[2], 0, 10) : 200;
    long long after_ms = argc > 3 ? atoll(argv[3]) : 150;
    void *library = dlopen(path, RTLD_NOW);
    if (!library) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    unsigned long (*burn_outer)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(library, "burn_outer");
    if (!burn_outer) return 1;
    long long start = thread_cpu_ns();
    sink += burn_outer(library_ms);
    long long library_end = thread_cpu_ns();
    if (dlclose(library) != 0) return 1;
    long long after_start = thread_cpu_ns();
    after_unload(after_start + after_ms * NS_PER_MS);
    long long end = thread_cpu_ns();
    fprintf(stderr, "library_cpu_ns=%lld\nafter_unload_cpu_ns=%lld\n", library_end - start, end - after_start);
    printf("dl done\n");
    return 0;
}
