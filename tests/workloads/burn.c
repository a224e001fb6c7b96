/* The library dl_host loads: burn_outer -> burn_inner, both out of line. */
static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long burn_inner(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) sink += i ^ (i >> 3);
    return sink;
}

__attribute__((noinline)) unsigned long burn_outer(unsigned long n) {
    return burn_inner(n) + 1;
}
