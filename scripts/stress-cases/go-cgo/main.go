// Case go-cgo: a Go program linked with libc (cgo) whose goroutines keep the garbage
// collector busy.
//
// 64 goroutines allocate and drop trees of small objects (the collector runs at GOGC=20, i.e.
// very often, and scans every goroutine's stack) and call a trivial C function, for 2 s of
// wall time. Checks: exit 0 and the deterministic lines printed at the end.
//
// Defect caught (issue 9, Go): the shim's sampling handler is installed without SA_ONSTACK,
// so it runs on a goroutine's small stack and overruns it; the Go runtime then dies with
// "fatal error: unexpected return pc" or "unknown caller pc" during the collector's stack scan.
package main

/*
static int add_one(int x) { return x + 1; }
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

type node struct {
	left, right *node
	payload     []byte
}

func build(depth int) *node {
	if depth == 0 {
		return &node{payload: make([]byte, 48)}
	}
	return &node{left: build(depth - 1), right: build(depth - 1), payload: make([]byte, 16)}
}

func (n *node) count() int {
	if n == nil {
		return 0
	}
	return 1 + n.left.count() + n.right.count()
}

// deep recurses so the goroutine's stack grows and shrinks while the collector runs.
func deep(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		return int(C.add_one(C.int(pad[0])))
	}
	return deep(n-1) + int(pad[n%64]&1)
}

func main() {
	debug.SetGCPercent(20)
	const workers = 64
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	bad := make([]bool, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var keep []*node
			for time.Now().Before(deadline) {
				tree := build(6)
				if tree.count() != 127 {
					bad[w] = true
				}
				keep = append(keep, tree)
				if len(keep) > 8 {
					keep = keep[1:]
				}
				deep(w % 40)
			}
		}(w)
	}
	wg.Wait()
	failed := 0
	for _, b := range bad {
		if b {
			failed++
		}
	}
	fmt.Printf("goroutines: %d, failed: %d\n", workers, failed)
	fmt.Printf("C says %d\n", int(C.add_one(41)))
}
