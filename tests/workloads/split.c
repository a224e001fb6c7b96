/* Two callers share one leaf (which sets up no frame, even with -fno-omit-frame-pointer): heavy() does 3 units of spin() per round, light() does 1,
 * so heavy's share of CPU is 75%. Prints its CPU time on stderr (cpu_ns=N), exits with 3. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void spin(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) sink += i * i;
}
/* The increments after the calls keep gcc from turning them into tail jumps. */
__attribute__((noinline)) void heavy(unsigned long n) { spin(3 * n); sink++; }
__attribute__((noinline)) void light(unsigned long n) { spin(n); sink++; }

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    for (unsigned long r = 0; r < rounds; r++) {
        heavy(100000);
        light(100000);
    }
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("split done %d\n", sink != 0);
    fprintf(stderr, "cpu_ns=%lld\n", (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    return 3;
}
