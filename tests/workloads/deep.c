/* Recursion DEPTH (default 200) frames deep, then a hot loop at the bottom until the thread has
 * burned CPU_MS of CPU time (default 300). */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long recurse(int depth, long long until_ns) {
    if (depth == 0) {
        do {
            for (unsigned long i = 0; i < 100000; i++) sink += i * 3;
        } while (thread_cpu_ns() < until_ns);
        return sink;
    }
    unsigned long result = recurse(depth - 1, until_ns);
    sink += result; /* uses the result after the call: no tail call, no accumulator loop */
    return result;
}

int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 200;
    long long budget_ms = argc > 2 ? atoll(argv[2]) : 300;
    recurse(depth, budget_ms * NS_PER_MS);
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    printf("deep done\n");
    return 0;
}
