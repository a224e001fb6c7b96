/* Recursion DEPTH (default 200) frames deep, then a hot loop at the bottom. */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long recurse(int depth, unsigned long work) {
    if (depth == 0) {
        for (unsigned long i = 0; i < work; i++) sink += i * 3;
        return sink;
    }
    unsigned long result = recurse(depth - 1, work);
    sink += result; /* uses the result after the call: no tail call, no accumulator loop */
    return result;
}

int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 200;
    unsigned long rounds = argc > 2 ? strtoul(argv[2], 0, 10) : 100;
    for (unsigned long r = 0; r < rounds; r++) recurse(depth, 10000000UL);
    printf("deep done\n");
    return 0;
}
