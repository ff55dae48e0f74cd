package faults_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/testbin"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// server is a `thinroot mount` or `thinroot serve` process of the real
// binary over a World's directories.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    string
	mnt    string
	socket string
	done   chan struct{}
	err    error
}

const treeGID = 4242

func thinrootBin(t testing.TB) string { return testbin.Thinroot(t, lvmtest.RepoRoot(t)) }

// worldFlags are the flags that point the binary at a world's
// directories and pool, and define its configs ad hoc.
func worldFlags(t testing.TB, w *faults.World) []string {
	return append([]string{"--state-dir", w.StateDir, "--basedir", w.Basedir, "--config-dir", t.TempDir(),
		"--pool", w.Pool, "--size", "1G", "--pool-size", "2G",
		"--bootstrap", "/bin/sh", "--bootstrap", lvmtest.BootstrapScript(t)}, w.Env.Flags()...)
}

// serverArgs are worldFlags plus the configs to serve.
func serverArgs(t testing.TB, w *faults.World) []string {
	args := append(worldFlags(t, w), "--log-level", "debug")
	for _, r := range w.Roots() {
		args = append(args, "--config", r)
	}
	return args
}

// startServer runs verb ("mount" or "serve") on mnt and waits for the
// tree (and for serve, the socket). env adds to the environment
// (THINROOT_CRASHPOINT).
func startServer(t *testing.T, w *faults.World, verb, mnt string, env ...string) *server {
	t.Helper()
	// Registered first, so it runs after the cleanup below: a mount left
	// behind has its connection aborted instead of wedging the run.
	testguard.Unwedge(t, mnt)
	logf, err := os.CreateTemp(t.TempDir(), verb+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{verb}
	if verb == "mount" {
		args = append(args, mnt)
	}
	args = append(args, serverArgs(t, w)...)
	args = append(args, "--refresh", "200ms", "--group", "4242", "--allow-other")
	s := &server{t: t, log: logf.Name(), mnt: mnt, done: make(chan struct{})}
	if verb == "serve" {
		s.socket = filepath.Join(filepath.Dir(mnt), filepath.Base(mnt)+".sock")
		args = append(args, "--mount", mnt, "--socket", s.socket, "--jobs", "2")
	}
	s.cmd = exec.Command(thinrootBin(t), args...)
	s.cmd.Dir = "/"
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		if !s.waitExit(10 * time.Second) {
			s.cmd.Process.Kill()
			s.reap()
		}
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	// Coming up takes longer on a loaded machine: wait as long as the
	// test may run.
	deadline := testguard.Deadline(t)
	for {
		_, err := os.Stat(filepath.Join(mnt, "README"))
		sockOK := true
		if s.socket != "" {
			// A killed daemon leaves its socket file behind: only a
			// connection tells that the new one listens.
			c, serr := net.Dial("unix", s.socket)
			if sockOK = serr == nil; sockOK {
				c.Close()
			}
		}
		if err == nil && sockOK {
			return s
		}
		if s.exited() {
			s.fail("the server exited: %v", s.err)
		}
		if time.Now().After(deadline) {
			s.fail("the server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
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

func (s *server) logText() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

func (s *server) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf(format+"\nserver log:\n%s", append(args, s.logText())...)
}

// kill sends SIGKILL and waits for the process to end.
func (s *server) kill() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	if !s.waitExit(10 * time.Second) {
		s.reap()
		s.fail("the server did not die within 10s of SIGKILL (its tree's connection had to be aborted)")
	}
}

// reap waits for a killed server that did not end: one stuck in the
// kernel on its own tree ends only once the tree's connection is
// aborted, which reap does, bounded by the test's deadline.
func (s *server) reap() {
	s.t.Helper()
	if s.waitExit(5 * time.Second) {
		return
	}
	if testguard.AbortMount(s.mnt) {
		s.t.Logf("aborted the FUSE connection on %s to reap its killed server", s.mnt)
	}
	if !s.waitExit(testguard.Remaining(s.t)) {
		s.t.Errorf("the server (pid %d) did not end even after its connection was aborted", s.cmd.Process.Pid)
	}
}

// waitExit waits up to d for the process to end on its own.
func (s *server) waitExit(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// cli runs the binary: the verb ("workdir create"), the world's flags,
// then args after "--", so that an argument that starts with '-' reaches
// the command as one.
func cli(ctx context.Context, t testing.TB, w *faults.World, verb string, args ...string) (string, error) {
	t.Helper()
	argv := append(strings.Fields(verb), worldFlags(t, w)...)
	argv = append(append(argv, "--"), args...)
	cmd := exec.CommandContext(ctx, thinrootBin(t), argv...)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func treePaths(mnt string, w *faults.World) (config, snaps string) {
	config = filepath.Join(mnt, "pools", w.Pool, "configs", w.Root)
	return config, filepath.Join(config, "snapshots")
}
