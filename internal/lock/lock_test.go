package lock

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mockLocker holds a lock the way mock does: Python's fcntl.lockf on the
// whole file. It prints "locked" once it holds it and keeps it until its
// stdin closes.
func mockLocker(t *testing.T, path string, exclusive bool) (*exec.Cmd, func()) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to take locks exactly as mock does (.ci/run installs it): %v", err)
	}
	mode := "fcntl.LOCK_SH"
	if exclusive {
		mode = "fcntl.LOCK_EX"
	}
	script := `import fcntl, sys
f = open(sys.argv[1], 'a+')
fcntl.lockf(f.fileno(), ` + mode + `)
print("locked", flush=True)
sys.stdin.read()
`
	cmd := exec.Command(py, "-c", script, path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("mock-style locker said %q", line)
	}
	return cmd, func() { stdin.Close(); cmd.Wait() }
}

// thinroot's OFD locks and mock's lockf locks exclude each other.
func TestLocksInteroperateWithMock(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lvm-mock.f41.lock")
	cmd, release := mockLocker(t, path, true)
	h, err := TryLock(path, false)
	if err != nil || h != nil {
		t.Fatalf("got a shared lock while mock holds it exclusively: %v", err)
	}
	holder, held := HolderOf(path, true)
	if !held || !holder.Exclusive || holder.PID != cmd.Process.Pid {
		t.Fatalf("holder %+v held=%v; want mock's pid %d", holder, held, cmd.Process.Pid)
	}
	// A blocking Lock waits (and says so) until mock lets go.
	said := make(chan Holder, 1)
	got := make(chan *Held, 1)
	go func() {
		h, err := Lock(context.Background(), path, true, func(h Holder) { said <- h })
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	select {
	case h := <-said:
		if h.PID != cmd.Process.Pid {
			t.Errorf("waiting callback names pid %d, want %d", h.PID, cmd.Process.Pid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not report waiting")
	}
	select {
	case <-got:
		t.Fatal("Lock returned while mock held the lock")
	case <-time.After(200 * time.Millisecond):
	}
	release()
	var mine *Held
	select {
	case mine = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not return after mock released")
	}
	// And mock cannot get it while thinroot holds it.
	py := exec.Command("python3", "-c", `import fcntl, sys
f = open(sys.argv[1], 'a+')
try:
    fcntl.lockf(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    print("got")
except OSError:
    print("busy")`, path)
	out, _ := py.Output()
	if strings.TrimSpace(string(out)) != "busy" {
		t.Fatalf("mock got the lock thinroot holds: %q", out)
	}
	// Downgraded to shared, mock can share it.
	if err := mine.Downgrade(); err != nil {
		t.Fatal(err)
	}
	_, rel := mockLocker(t, path, false)
	rel()
	mine.Release()
}

// Two lock holders in one process exclude each other (lockf would not).
func TestLocksExcludeWithinProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a, err := TryLock(path, true)
	if err != nil || a == nil {
		t.Fatal("first lock", err)
	}
	if b, _ := TryLock(path, true); b != nil {
		t.Fatal("second exclusive lock in the same process succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path, false, nil); err != context.DeadlineExceeded {
		t.Fatalf("Lock with expired context: %v", err)
	}
	a.Release()
	b, err := Lock(context.Background(), path, false, nil)
	if err != nil || b == nil {
		t.Fatal("lock after release", err)
	}
	b.Release()
}
