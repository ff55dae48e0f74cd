package fsview_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// server is a `thinroot mount` process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  string
	mnt  string
	done chan struct{} // closed when the process has exited
	err  error
}

func startMount(t *testing.T, f *lvmtest.Fixture, mnt string) *server {
	t.Helper()
	testguard.Unwedge(t, mnt)
	logf, err := os.CreateTemp(t.TempDir(), "mount-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(thinrootBin(t), append([]string{"mount", mnt, "--state-dir", f.StateDir, "--basedir", f.Basedir,
		"--refresh", "200ms", "--config", f.Root, "--pool", f.Pool, "--allow-other", "--log-level", "debug"}, env.Flags()...)...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, log: logf.Name(), mnt: mnt, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			testguard.AbortMount(mnt)
			<-s.done
		}
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	for deadline := testguard.Deadline(t); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(mnt, "README")); err == nil {
			break
		}
		select {
		case <-s.done:
			s.fail("the server exited: %v", s.err)
		default:
		}
		if time.Now().After(deadline) {
			s.fail("the tree did not come up")
		}
	}
	return s
}

func (s *server) fail(format string, args ...any) {
	s.t.Helper()
	b, _ := os.ReadFile(s.log)
	s.t.Fatalf(format+"\nserver log:\n%s", append(args, b)...)
}

// wait waits for the process to end, up to d.
func (s *server) wait(d time.Duration) error {
	s.t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(d):
		s.fail("the server did not exit within %v", d)
		return nil
	}
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// TestMountProcess runs `thinroot mount` for real: it serves the tree,
// comes back on the same mount point after a kill -9, unmounts cleanly on
// SIGTERM, and detaches lazily while a user is still inside.
func TestMountProcess(t *testing.T) {
	f := world(t)
	mnt := filepath.Join(probe.PublicDir(t), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	s := startMount(t, f, mnt)
	m := &mounted{t: t, F: f, Mnt: mnt}
	if got := m.names(filepath.Join(mnt, "configs")); !reflect.DeepEqual(got, []string{f.Root}) {
		s.fail("configs/ lists %v", got)
	}
	if keyValues(t, m.read(filepath.Join(m.pool(), "stats")))["pool"] != f.Pool {
		s.fail("stats do not name the pool")
	}

	// kill -9 leaves a dead mount; a new server takes its place.
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.wait(5 * time.Second)
	var sfs syscall.Statfs_t
	// ENOTCONN once the kernel has closed the dead server's connection,
	// ECONNABORTED when its watchdog aborted it first: both say dead.
	if err := syscall.Statfs(mnt, &sfs); !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
		t.Fatalf("after kill -9 the mount point gives %v, want ENOTCONN or ECONNABORTED", err)
	}
	s = startMount(t, f, mnt)
	w := filepath.Join(m.snap("postinit"), "again")
	if err := os.Mkdir(w, 0o755); err != nil {
		s.fail("mkdir through the new server: %v", err)
	}
	requireRoot(t, filepath.Join(f.Basedir, f.Root+"-again", "root"))
	if err := syscall.Rmdir(w); err != nil {
		s.fail("rmdir through the new server: %v", err)
	}

	// SIGTERM: a clean unmount and exit.
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(10 * time.Second); err != nil {
		s.fail("exit after SIGTERM: %v", err)
	}
	if ok, _ := isMounted(mnt); ok {
		s.fail("still mounted after SIGTERM")
	}

	// SIGTERM with a file open inside: detached at once, served until the
	// last user leaves.
	s = startMount(t, f, mnt)
	held, err := os.Open(filepath.Join(mnt, "README"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	lvmtest.WaitFor(t, 10*time.Second, "the busy tree to be detached", func() bool {
		ok, _ := isMounted(mnt)
		return !ok
	})
	buf := make([]byte, 16)
	if _, err := held.Read(buf); err != nil {
		s.fail("reading a file held open in the detached tree: %v", err)
	}
	if s.exited() {
		s.fail("the server exited while a user was still inside")
	}
	held.Close()
	if err := s.wait(10 * time.Second); err != nil {
		s.fail("exit after the last user left: %v", err)
	}
}
