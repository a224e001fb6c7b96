/* Cases sigterm, sigint, sighup: a busy program killed by a signal left at its default action.
 *
 * The program prints "ready" and burns CPU in one thread until a signal kills it; the harness
 * sends SIGTERM (after 2 s of the program's CPU time, read from /proc), SIGINT or SIGHUP
 * (after 1 s). After 30 s of wall time without a signal it prints "not killed" and exits 3.
 * Checks (harness): the program dies of that signal; its trace says so (end_signal) and holds
 * samples for at least 85% of the CPU time its threads had used when the signal was sent.
 *
 * Defect caught (issue 9, profile lost): the open generation is not written when a signal
 * with a default action of "terminate" arrives, so the trace keeps only the generations
 * closed before (0 samples for a short run at the default 1 s generation) and its end is
 * "unknown". */
#include "stress.h"

int main(void) {
    static const char ready[] = "ready\n";
    if (write(1, ready, sizeof ready - 1) != (ssize_t)(sizeof ready - 1)) fail("write");
    uint64_t end = mono_ns() + 30000000000ull;
    while (mono_ns() < end) burn_thread_cpu(10000000ull);
    printf("not killed\n");
    return 3;
}
