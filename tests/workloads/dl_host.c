/* Loads ./libburn.so after start-up, burns CPU in it (burn_outer -> burn_inner, built without
 * frame pointers), unloads it, then burns CPU in its own loop. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void after_unload(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) sink += i;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "./libburn.so";
    void *library = dlopen(path, RTLD_NOW);
    if (!library) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    unsigned long (*burn_outer)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(library, "burn_outer");
    if (!burn_outer) return 1;
    sink += burn_outer(argc > 2 ? strtoul(argv[2], 0, 10) : 400000000UL);
    if (dlclose(library) != 0) return 1;
    after_unload(300000000UL);
    printf("dl done\n");
    return 0;
}
