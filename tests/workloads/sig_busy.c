/* Burns CPU_MS of CPU (argument 1) in burn(), prints "cpu_ns=N" and "ready" on stderr, then
 * burns on until a signal kills it (it gives up after 30 s of CPU and exits with 99). With a
 * second argument "core" it raises RLIMIT_CORE so that signals whose default dumps core do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void burn(long long until_ns) {
    while (process_cpu_ns() < until_ns)
        for (int i = 0; i < 10000; i++) sink += i;
}

int main(int argc, char **argv) {
    long long budget_ms = argc > 1 ? atoll(argv[1]) : 1000;
    if (argc > 2 && !strcmp(argv[2], "core")) {
        struct rlimit limit = {64 << 20, 64 << 20};
        setrlimit(RLIMIT_CORE, &limit);
    }
    burn(budget_ms * NS_PER_MS);
    fprintf(stderr, "cpu_ns=%lld\nready\n", process_cpu_ns());
    burn(process_cpu_ns() + 30000 * NS_PER_MS);
    return 99;
}
