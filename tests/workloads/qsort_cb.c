/* libc's qsort (built without frame pointers) calls back into compare(), which burns CPU. */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) static int compare(const void *a, const void *b) {
    for (int i = 0; i < 300; i++) sink += i;
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    static int values[20000];
    for (int r = 0; r < rounds; r++) {
        srand(r);
        for (int i = 0; i < 20000; i++) values[i] = rand();
        qsort(values, 20000, sizeof values[0], compare);
    }
    printf("qsort done\n");
    return 0;
}
