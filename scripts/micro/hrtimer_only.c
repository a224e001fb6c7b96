/* CPU cost of a perf task-clock event at 10 kHz with no signal at all: the hrtimer alone. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static volatile long hits; static volatile unsigned long sink;
static void handler(int s, siginfo_t *i, void *u) { (void)s; (void)i; (void)u; hits++; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
    struct sigaction a; memset(&a, 0, sizeof a); a.sa_sigaction = handler; a.sa_flags = SA_SIGINFO | SA_RESTART; sigaction(SIGTRAP, &a, 0);
    struct perf_event_attr attr; memset(&attr, 0, sizeof attr); attr.type = PERF_TYPE_SOFTWARE; attr.size = sizeof attr; attr.config = PERF_COUNT_SW_TASK_CLOCK; attr.sample_period = 100000; attr.disabled = 1; attr.exclude_kernel = 1; attr.exclude_hv = 1;
    
    int fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) { perror("perf_event_open"); return 1; }
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    double t0 = cpu(); for (long i = 0; i < 300000000; i++) sink += i; double t = cpu() - t0;
    printf("hrtimer only: %.3f s CPU, %ld signals\n", t, hits); return 0;
}
