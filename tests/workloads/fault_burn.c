/* Burns CPU_MS of its own CPU time (default 300) in two halves and does ACTION between them:
 *   none         nothing;
 *   unlink DIR   deletes every file in DIR whose name holds ".sigtrace" (the trace files);
 *   rmdir DIR    deletes every file in DIR, then DIR itself.
 * Prints "first half" and "second half done" on stdout (flushed), cpu_ns=N (the process's CPU
 * time) on stderr, and exits with 3. Usage: fault_burn CPU_MS [ACTION [DIR]]
 * At the start of main it calls early_thread_go() if a preloaded library defines it
 * (tests/workloads/early_thread.c). */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clocks.h"

static volatile unsigned long sink;

__attribute__((noinline)) static void burn_until(long long until_ns) {
    do {
        for (unsigned long i = 0; i < 20000; i++) sink += i ^ (sink >> 3);
    } while (thread_cpu_ns() < until_ns);
}

/* Deletes the files of `dir` whose names hold `part` (every file when `part` is ""). */
static void delete_files(const char *dir, const char *part) {
    DIR *listing = opendir(dir);
    if (!listing) return;
    struct dirent *entry;
    char path[4096];
    while ((entry = readdir(listing))) {
        if (entry->d_name[0] == '.' && (entry->d_name[1] == 0 || (entry->d_name[1] == '.' && entry->d_name[2] == 0))) continue;
        if (!strstr(entry->d_name, part)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        unlink(path);
    }
    closedir(listing);
}

int main(int argc, char **argv) {
    long long budget_ns = (argc > 1 ? atoll(argv[1]) : 300) * NS_PER_MS;
    const char *action = argc > 2 ? argv[2] : "none";
    const char *dir = argc > 3 ? argv[3] : ".";
    void (*early_thread_go)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "early_thread_go");
    if (early_thread_go) early_thread_go();
    burn_until(budget_ns / 2);
    printf("first half\n");
    fflush(stdout);
    if (strcmp(action, "unlink") == 0) {
        delete_files(dir, ".sigtrace");
    } else if (strcmp(action, "rmdir") == 0) {
        delete_files(dir, "");
        if (rmdir(dir) != 0) perror("rmdir");
    }
    burn_until(budget_ns);
    printf("second half done\n");
    fprintf(stderr, "cpu_ns=%lld\n", process_cpu_ns());
    return 3;
}
