/* libc's qsort (built without frame pointers) calls back into compare(), which burns CPU.
 * Sorts 20000 random ints again and again until the process has burned CPU_MS of CPU time
 * (default 300; checked between sorts), then prints it (cpu_ns=N) on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static int compare(const void *a, const void *b) {
    for (int i = 0; i < 300; i++) sink += i;
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long long budget_ns = (argc > 1 ? atoll(argv[1]) : 300) * NS_PER_MS;
    static int values[20000];
    int round = 0;
    do {
        srand(round++);
        for (int i = 0; i < 20000; i++) values[i] = rand();
        qsort(values, 20000, sizeof values[0], compare);
    } while (thread_cpu_ns() < budget_ns);
    fprintf(stderr, "cpu_ns=%lld\n", thread_cpu_ns());
    printf("qsort done\n");
    return 0;
}
