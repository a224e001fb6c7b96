/* Built with -O2 -g: nearly all the CPU time is spent in mix_block(), which is always inlined
 * into its only caller hot_loop() (noinline), so its samples' addresses belong to hot_loop and
 * DWARF names mix_block as an inline frame there. Burns CPU_MS (default 200) of the main
 * thread's CPU time; prints "cpu_ns=N" on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

static inline __attribute__((always_inline)) void mix_block(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) sink += (i * 2654435761UL) ^ (sink >> 7);
}

__attribute__((noinline)) static void hot_loop(long long until_ns) {
    do {
        mix_block(100000);
    } while (thread_cpu_ns() < until_ns);
}

int main(int argc, char **argv) {
    hot_loop((argc > 1 ? atoll(argv[1]) : 200) * NS_PER_MS);
    printf("inlined done\n");
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    return 0;
}
