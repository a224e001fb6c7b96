/* Burns CPU_MS of the main thread's CPU time (default 5) and returns from main: the process
 * ends right after its last stretch of computing. Prints main cpu_ns=N (the CPU time main
 * burned) on stderr. Usage: exit_tail CPU_MS */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void burn_until(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 2000; i++) sink += i ^ (sink >> 3);
    } while (thread_cpu_ns() < until_ns);
}

int main(int argc, char **argv) {
    long long start = thread_cpu_ns();
    burn_until(start + ms_to_ns(argc > 1 ? atof(argv[1]) : 5));
    fprintf(stderr, "main cpu_ns=%lld\n", thread_cpu_ns() - start);
    return 0;
}
