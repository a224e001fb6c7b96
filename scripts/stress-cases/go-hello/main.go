// Case go-build: the module that `go build` builds under the shim (the `go` command is a Go
// program linked with libc; see scripts/stress). Issue 9: `go build` of this hello-world dies
// in 3 runs of 4 with "fatal error: unexpected return pc" during the collector's stack scan,
// because the shim's sampling handler runs on goroutine stacks (no SA_ONSTACK).
package main

import "fmt"

func main() {
	fmt.Println("hello from the stress harness")
}
