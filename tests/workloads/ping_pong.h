/* Serving, as the workloads that serve do it: a byte ping-ponged between the serving thread and
 * a peer thread over two pipes, two context switches per round trip. Header-only (gcc finds it
 * next to the workloads); open the pipes with ping_pong_open, run ping_pong_peer on the peer
 * thread, and end it with ping_pong_quit. */
#ifndef SIGTRACE_TEST_PING_PONG_H
#define SIGTRACE_TEST_PING_PONG_H

#include <unistd.h>
#include "clocks.h"

static int to_peer[2], to_main[2];

/* Opens the two pipes; nonzero on failure. */
static inline int ping_pong_open(void) { return pipe(to_peer) || pipe(to_main); }

/* Serves for `wall_ns` of wall time. */
__attribute__((noinline)) static void serve(long long wall_ns) {
    char byte = 'x';
    long long end = monotonic_ns() + wall_ns;
    while (monotonic_ns() < end) {
        if (write(to_peer[1], &byte, 1) != 1 || read(to_main[0], &byte, 1) != 1) break;
    }
}

/* The peer's side: echoes each byte until ping_pong_quit's. */
static inline void ping_pong_peer(void) {
    char byte;
    while (read(to_peer[0], &byte, 1) == 1 && byte != 'q') {
        if (write(to_main[1], &byte, 1) != 1) break;
    }
}

/* Tells the peer to return; nonzero on failure. */
static inline int ping_pong_quit(void) {
    char quit = 'q';
    return write(to_peer[1], &quit, 1) != 1;
}

#endif
