/* A thread on a 16 KiB stack burns CPU: too little room below it for a DWARF walk. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

static volatile unsigned long sink;

static void *burn(void *arg) {
    (void)arg;
    for (unsigned long i = 0; i < 300000000UL; i++) sink += i;
    return NULL;
}

int main(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
    pthread_t thread;
    if (pthread_create(&thread, &attr, burn, NULL) != 0) return 1;
    pthread_join(thread, NULL);
    printf("small stack done\n");
    return 0;
}
