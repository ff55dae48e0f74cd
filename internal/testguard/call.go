package testguard

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Unwedge guards a FUSE mount point for the rest of a test. Call it
// before mounting there: its cleanup then runs after the mount's own.
// If the test is still running at its deadline, the test fails with a
// dump of every goroutine and the connection is aborted, which releases
// every call blocked on it; if a mount is still there when the test's
// cleanups are done, its connection is aborted and it is detached.
func Unwedge(t testing.TB, mnt string) {
	t.Helper()
	timer := time.AfterFunc(time.Until(Deadline(t)), func() {
		t.Errorf("testguard: %s still running at its deadline; aborting the FUSE connection on %s; goroutines:\n%s",
			t.Name(), mnt, dump())
		AbortMount(mnt)
	})
	t.Cleanup(func() {
		timer.Stop()
		if AbortMount(mnt) {
			t.Logf("testguard: aborted the FUSE connection a test left on %s", mnt)
		}
		for _, e := range Mounted(mnt) {
			unix.Unmount(e.Mountpoint, unix.MNT_DETACH)
		}
	})
}

// AbortMount aborts the connection of the FUSE mount at mnt, if there is
// one, and tells whether it did.
func AbortMount(mnt string) bool {
	for _, e := range Mounted(mnt) {
		if e.Mountpoint == mnt && isFUSE(e) {
			return abortConn(e) == nil
		}
	}
	return false
}

// Call runs a call that may block (a file system call on a tree, a wait
// on a process) until the test's deadline. If it is still blocked then,
// the test fails with a dump of every goroutine, and the FUSE
// connections under the package's scratch directory are aborted so that
// the call returns; Call then stops the test.
func Call(t testing.TB, what string, fn func() error) error {
	t.Helper()
	return CallWithin(t, what, Remaining(t), fn)
}

// CallWithin is Call with a shorter bound than the test's deadline.
func CallWithin(t testing.TB, what string, d time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
	}
	t.Errorf("testguard: %s still blocked after %v; goroutines:\n%s", what, d, dump())
	for _, m := range Abort(scope) {
		t.Logf("testguard: aborted the FUSE connection on %s", m)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Logf("testguard: %s did not return after the abort either", what)
	}
	t.FailNow()
	return nil
}

// WaitFor polls cond until it holds or the test's deadline passes;
// expect is how long it takes on an idle machine, and a wait past it is
// logged so that slowness shows without failing a loaded run.
func WaitFor(t testing.TB, expect time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	deadline := Deadline(t)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", time.Since(start).Round(time.Millisecond), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); expect > 0 && took > expect {
		t.Logf("slow: %s took %v (expected within %v)", what, took.Round(time.Millisecond), expect)
	}
}

// Context returns a context that ends at the test's deadline.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), Deadline(t))
	t.Cleanup(cancel)
	return ctx
}
