//go:build crashpoints

// Package crashpoint stops the process at named points inside multi-step
// operations, for the fault tests. It is compiled in only with the build
// tag crashpoints (the Makefile's test targets set it): a released binary
// has no crash points, and Hit is an empty function the compiler drops.
//
// With the tag, Hit does nothing unless the environment variable
// THINROOT_CRASHPOINT names the point being passed; then the process
// kills itself with SIGKILL right there, as a power cut or an OOM kill
// would, leaving whatever was half done for recovery to find.
//
// Points are named "<operation>:<step>", the operation being the one
// whose steps they separate (init:after-base, workdir-create:after-clone,
// build:after-workdir), the step said as "before-", "after-" or "while-"
// what it is next to.
package crashpoint

import (
	"os"
	"strings"
	"syscall"
)

// Enabled tells whether this binary has crash points.
const Enabled = true

var points = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Split(os.Getenv(Env), ",") {
		if p = strings.TrimSpace(p); p != "" {
			m[p] = true
		}
	}
	return m
}()

// Hit kills the process if name is an armed point.
func Hit(name string) {
	if len(points) == 0 || !points[name] {
		return
	}
	os.Stderr.WriteString("crashpoint: " + name + "\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
