// A cgo program (dynamically linked, so LD_PRELOAD reaches it) that computes Fibonacci numbers
// recursively for ARG1 milliseconds of its own CPU time, prints "fib ok", and exits with status
// ARG2 (default 0) through Go's own exit path (os.Exit: the exit_group system call, never
// libc's exit). It prints its CPU time as cpu_ns=N on stderr.
package main

/*
#include <time.h>
static long long process_cpu_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func main() {
	ms, status := 1000, 0
	if len(os.Args) > 1 {
		ms, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		status, _ = strconv.Atoi(os.Args[2])
	}
	budget := int64(ms) * 1000000
	total := 0
	for int64(C.process_cpu_ns()) < budget {
		total += fib(22)
	}
	fmt.Println("fib ok", total > 0)
	fmt.Fprintf(os.Stderr, "cpu_ns=%d\n", int64(C.process_cpu_ns()))
	os.Exit(status)
}
