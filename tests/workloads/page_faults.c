/* Mostly kernel time: maps 16 MiB, touches every page, unmaps it, again and again until the
 * process has burned CPU_MS of CPU time (default 300; checked between rounds). Prints
 * "sys_ns=N" and "cpu_ns=N" (the process's system and total CPU time) on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include "clocks.h"

int main(int argc, char **argv) {
    long long budget_ns = (argc > 1 ? atoll(argv[1]) : 300) * NS_PER_MS;
    size_t size = 16 << 20;
    do {
        volatile char *pages = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (pages == MAP_FAILED) return 1;
        for (size_t offset = 0; offset < size; offset += 4096) pages[offset] = 1;
        munmap((void *)pages, size);
    } while (thread_cpu_ns() < budget_ns);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    long long user = usage.ru_utime.tv_sec * 1000000000LL + usage.ru_utime.tv_usec * 1000LL;
    long long sys = usage.ru_stime.tv_sec * 1000000000LL + usage.ru_stime.tv_usec * 1000LL;
    fprintf(stderr, "sys_ns=%lld\ncpu_ns=%lld\n", sys, user + sys);
    return 0;
}
