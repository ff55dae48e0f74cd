// Package testguard keeps a test package from wedging the run or leaking
// into the host (test support only; product code never imports it).
//
// Main gives the package a scratch directory of its own (TMPDIR points
// there, so t.TempDir and os.MkdirTemp land in it), and after the tests
// asserts that nothing is still mounted under it, no loop device is
// backed by a file in it and no cgroup is left under the parents its
// tests made (cgroup.TestParent); whatever is left is detached and reported, and
// the package fails. Because the check only looks inside the package's
// own directory, packages that `go test` runs side by side do not see
// each other's mounts.
//
// A FUSE request whose server is gone (or wedged) leaves the caller in
// the kernel, unkillable, until the connection is aborted; a test binary
// with such a thread never exits, and `go test` waits on it forever.
// Unwedge aborts a tree's connection when its test ends, Call bounds a
// blocking call by the test's deadline, and Main aborts every connection
// under the scratch directory shortly before the binary's own -timeout,
// with a dump of every goroutine, so a hang becomes a failure.
package testguard

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/cgroup"
)

// scope is the package's scratch directory; "" before Main runs.
var scope string

// margin is how long before a deadline the guard acts: time enough to
// dump goroutines, abort connections and let cleanups run.
const margin = 30 * time.Second

// Main runs the tests with a scratch directory of the package's own, then
// checks and clears what they left. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }
//
// after any re-exec hooks (sandbox.Main, probe.Main) have had their turn.
func Main(m *testing.M) int {
	if err := enterScope(); err != nil {
		fmt.Fprintf(os.Stderr, "testguard: %v\n", err)
		return 1
	}
	stop := watchTimeout()
	code := m.Run()
	stop()
	leaks := append(Sweep(scope), cgroup.SweepTestParents()...)
	if len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "testguard: the tests of %s left these behind (now detached):\n  %s\n",
			pkgName(), strings.Join(leaks, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	if Mounted(scope) == nil {
		os.RemoveAll(scope)
	}
	return code
}

// enterScope makes the scratch directory and points TMPDIR at it. It is
// world-searchable: tests act as other users on paths under it.
func enterScope() error {
	d, err := os.MkdirTemp("", "thinroot-test-"+pkgName()+"-")
	if err != nil {
		return err
	}
	if err := os.Chmod(d, 0o755); err != nil {
		return err
	}
	scope = d
	return os.Setenv("TMPDIR", d)
}

// Scope returns the package's scratch directory ("" without Main).
func Scope() string { return scope }

// pkgName is the test binary's package, from its name (fsview.test).
func pkgName() string {
	return strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
}

// watchTimeout acts shortly before the binary's -test.timeout: it dumps
// every goroutine and aborts the FUSE connections under the scope, so
// that the timeout's panic can end the process instead of leaving a
// thread in the kernel. It returns a function that disarms it.
func watchTimeout() func() {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return func() {}
	}
	d, ok := f.Value.(flag.Getter).Get().(time.Duration)
	if !ok || d <= 0 {
		return func() {}
	}
	at := d - margin
	if at < d/2 {
		at = d / 2
	}
	timer := time.AfterFunc(at, func() {
		fmt.Fprintf(os.Stderr, "testguard: %s is about to hit its %v timeout; goroutines:\n%s\n", pkgName(), d, dump())
		for _, c := range Abort(scope) {
			fmt.Fprintf(os.Stderr, "testguard: aborted the FUSE connection of %s\n", c)
		}
	})
	return func() { timer.Stop() }
}

// dump returns the stacks of every goroutine.
func dump() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Deadline is when a test's waits must end: its -timeout deadline less a
// margin for cleanup, or an hour from now without one.
func Deadline(t testing.TB) time.Time {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			return dl.Add(-margin)
		}
	}
	return time.Now().Add(time.Hour)
}

// Remaining is the time left until Deadline, at least a second.
func Remaining(t testing.TB) time.Duration {
	r := time.Until(Deadline(t))
	if r < time.Second {
		r = time.Second
	}
	return r
}
