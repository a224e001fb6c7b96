/* Reads the clock in a hot loop: most samples land in the vDSO's clock_gettime. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) static long read_clocks(unsigned long n) {
    struct timespec now;
    long sum = 0;
    for (unsigned long i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        sum += now.tv_nsec & 1;
    }
    return sum;
}

int main(int argc, char **argv) {
    unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 30000000UL;
    printf("vdso done %d\n", read_clocks(n) >= 0);
    return 0;
}
