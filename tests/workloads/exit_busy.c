/* Four threads spin forever; the main thread spins a while and calls exit(7) under them. */
#include <pthread.h>
#include <stdlib.h>

static volatile unsigned long sink;

static void *spinner(void *arg) {
    (void)arg;
    for (;;) sink++;
    return NULL;
}

int main(void) {
    pthread_t thread;
    for (int i = 0; i < 4; i++) pthread_create(&thread, NULL, spinner, NULL);
    for (unsigned long i = 0; i < 300000000UL; i++) sink += i;
    exit(7);
}
