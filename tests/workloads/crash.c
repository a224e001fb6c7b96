/* Burns CPU_MS of CPU (default 1500) in burn(), prints "cpu_ns=N" on stderr, then ends as
 * asked: abort | segv | _exit | exit | wait (sleeps, to be killed). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void burn(long long until_ns) {
    while (process_cpu_ns() < until_ns)
        for (int i = 0; i < 100000; i++) sink += i;
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "exit";
    long long budget_ms = argc > 2 ? atoll(argv[2]) : 1500;
    burn(budget_ms * NS_PER_MS);
    fprintf(stderr, "cpu_ns=%lld\n", process_cpu_ns());
    printf("about to %s\n", how);
    fflush(stdout);
    if (!strcmp(how, "abort")) abort();
    if (!strcmp(how, "segv")) { volatile int *null = NULL; return *null; }
    if (!strcmp(how, "_exit")) _exit(42);
    if (!strcmp(how, "wait")) { fprintf(stderr, "waiting\n"); for (;;) burn(process_cpu_ns() + 1000 * NS_PER_MS); }
    return 5;
}
