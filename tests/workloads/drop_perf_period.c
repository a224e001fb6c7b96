/* Preloaded before sigtrace in a test: swallows PERF_EVENT_IOC_PERIOD (answers success, does
 * nothing), so a perf event keeps its short first period: the signal storm a lost period makes,
 * on purpose, for the storm guard to contain. */
#define _GNU_SOURCE
#include <dlfcn.h>

#define PERF_EVENT_IOC_PERIOD 0x40082404UL

static int (*real_ioctl)(int, unsigned long, void *);

__attribute__((constructor)) static void find_real_ioctl(void) {
    real_ioctl = (int (*)(int, unsigned long, void *))dlsym(RTLD_NEXT, "ioctl");
}

int ioctl(int fd, unsigned long request, void *argument) {
    if (request == PERF_EVENT_IOC_PERIOD) return 0;
    /* sigtrace's constructor may run before ours: its first ioctl (outside any handler) finds it. */
    if (!real_ioctl) find_real_ioctl();
    return real_ioctl(fd, request, argument);
}
