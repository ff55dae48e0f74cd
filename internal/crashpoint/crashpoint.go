// Package crashpoint stops the process at named points inside multi-step
// operations, for the fault tests. It does nothing unless the environment
// variable THINROOT_CRASHPOINT names the point being passed; then the
// process kills itself with SIGKILL right there, as a power cut or an OOM
// kill would, leaving whatever was half done for recovery to find.
package crashpoint

import (
	"os"
	"strings"
	"syscall"
)

// Env is the variable naming the point(s) to crash at (comma-separated).
const Env = "THINROOT_CRASHPOINT"

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

// Armed tells whether any point is armed (tests use it to sanity-check).
func Armed() bool { return len(points) > 0 }
