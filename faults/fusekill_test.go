package faults_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// TestFUSEServerKilledWithShellInside: SIGKILL to `thinroot mount` while a
// shell has its working directory in the tree. A new server mounts on the
// same mount point, the shell lives on and works once it cd's back in,
// and every volume is as it was.
func TestFUSEServerKilledWithShellInside(t *testing.T) {
	r := faults.Record(t, "fuse-kill", "server killed with a shell inside the tree", hostEnv.Name)
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{Exts: []string{"inside"}})
	w.Init(0)
	mnt := filepath.Join(probe.PublicDir(t), "tree")
	os.Mkdir(mnt, 0o755)
	s := startServer(t, w, "mount", mnt)
	_, snaps := treePaths(mnt, w)
	r.Must(os.Mkdir(filepath.Join(snaps, lvm.PostInit, "inside"), 0o755) == nil, "mkdir through the tree")
	before := w.Picture(w.NewManagerFor())

	sh := newShell(t, filepath.Join(snaps, lvm.PostInit))
	out := sh.run("ls")
	r.Check(strings.Contains(out, "inside"), "the shell inside the tree lists %q", out)
	for run := 0; run < faults.Runs(); run++ {
		r.Run()
		s.kill()
		// The shell is still there, in a directory whose server is gone.
		out = sh.run("ls 2>&1; echo rc=$?")
		r.Check(strings.Contains(out, "rc=") && !strings.Contains(out, "rc=0"), "ls in the dead tree: %q, want an error", out)
		s = startServer(t, w, "mount", mnt)
		out = sh.run("cd " + filepath.Join(snaps, lvm.PostInit) + " && ls && cat inside/.info")
		r.Check(strings.Contains(out, "inside") && strings.Contains(out, "state: mounted"),
			"after cd back into the new tree the shell sees %q", out)
		m := w.Restart()
		w.CheckInvariants(m, r)
		got := w.Picture(m)
		r.Check(got.String() == before.String(), "after the server was killed:\nbefore %s\nafter  %s", before, got)
		issue, err := os.ReadFile(filepath.Join(mnt, "workdirs", w.Root+".inside", "etc", "issue"))
		r.Check(err == nil && strings.Contains(string(issue), "busybox"), "the workdir through the new tree: %q %v", issue, err)
	}
	sh.close()
}

// shell is an interactive /bin/sh fed line by line.
type shell struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	seq  int
	done chan struct{}
}

func newShell(t *testing.T, dir string) *shell {
	t.Helper()
	cmd := exec.Command("/bin/sh")
	cmd.Dir = dir
	in, _ := cmd.StdinPipe()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &shell{t: t, cmd: cmd, in: in, out: bufio.NewReader(pr), done: make(chan struct{})}
	go func() { cmd.Wait(); pw.Close(); close(s.done) }()
	t.Cleanup(s.close)
	return s
}

// run runs a line and returns its output (up to a marker it echoes).
func (s *shell) run(line string) string {
	s.t.Helper()
	s.seq++
	mark := fmt.Sprintf("__end_%d__", s.seq)
	fmt.Fprintf(s.in, "%s\necho %s\n", line, mark)
	var b strings.Builder
	res := make(chan string, 1)
	go func() {
		for {
			l, err := s.out.ReadString('\n')
			if strings.TrimSpace(l) == mark || err != nil {
				res <- b.String()
				return
			}
			b.WriteString(l)
		}
	}()
	select {
	case out := <-res:
		return out
	case <-time.After(30 * time.Second):
		s.t.Fatalf("the shell did not answer %q (so far %q)", line, b.String())
		return ""
	}
}

func (s *shell) close() {
	s.in.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
	}
}

// TestFUSEServerKilledDuringMkdir: the server dies while a mkdir is in
// flight, at each point inside the workdir creation and at random
// moments (fixed seed). After a restart on the same mount point the
// workdir either exists and can be entered or left nothing behind, in
// which case a new mkdir makes it.
func TestFUSEServerKilledDuringMkdir(t *testing.T) {
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{Exts: []string{"flight"}})
	w.Init(0)
	mnt := filepath.Join(probe.PublicDir(t), "tree")
	os.Mkdir(mnt, 0o755)
	_, snaps := treePaths(mnt, w)
	dir := filepath.Join(snaps, lvm.PostInit, "flight")
	op := faults.Op{Kind: "workdir-create", Root: w.Root, Snap: lvm.PostInit, Ext: "flight"}

	round := func(r *faults.Rec, how string, kill func(s *server, mkdirDone <-chan struct{})) {
		t.Helper()
		r.Run()
		before := w.Picture(w.M)
		after, ok := faults.Apply(before, op)
		r.Must(ok, "the model refuses %s on %s", op, before)
		var env []string
		if strings.Contains(how, ":") {
			env = append(env, "THINROOT_CRASHPOINT="+how)
		}
		s := startServer(t, w, "mount", mnt, env...)
		mkdirDone := make(chan struct{})
		var mkErr error
		go func() { mkErr = os.Mkdir(dir, 0o755); close(mkdirDone) }()
		kill(s, mkdirDone)
		select {
		case <-mkdirDone:
		case <-time.After(30 * time.Second):
			r.Must(false, "%s: mkdir still blocked 30s after the server died", how)
		}
		s = startServer(t, w, "mount", mnt)
		m := w.Restart()
		w.CheckInvariants(m, r)
		got := w.Picture(m)
		_, statErr := os.Stat(filepath.Join(mnt, "workdirs", w.Root+".flight", "etc", "issue"))
		switch got.String() {
		case after.String():
			r.Outcome("completed")
			r.Check(statErr == nil, "%s: the workdir exists but cannot be entered through the new tree: %v", how, statErr)
		case before.String():
			r.Outcome("nothing-left")
			r.Check(mkErr != nil, "%s: mkdir reported success but nothing is there", how)
			r.Check(os.Mkdir(dir, 0o755) == nil, "%s: a new mkdir through the new server failed", how)
		default:
			r.Check(false, "%s: the volumes are neither as before nor with the workdir:\nbefore %s\nafter  %s\ngot    %s",
				how, before, after, got)
		}
		rmErr := syscall.Rmdir(dir)
		if rmErr != nil && !errors.Is(rmErr, syscall.ENOENT) {
			r.Check(false, "%s: rmdir through the new tree: %v", how, rmErr)
		}
		w.M = w.NewManagerFor()
		if left := w.Picture(w.M); left.String() != before.String() {
			r.Check(false, "%s: after rmdir (%v) the volumes are not as before the round:\nbefore %s\nnow    %s\nserver log:\n%s",
				how, rmErr, before, left, s.logText())
		}
		s.kill()
	}

	for _, point := range []string{"workdir-create:before-clone", "workdir-create:after-clone",
		"workdir-create:after-mount", "workdir-create:after-record"} {
		t.Run(point, func(t *testing.T) {
			lvmtest.RequireCrashPoints(t)
			w.T, w.Fixture.T = t, t
			r := faults.Record(t, "fuse-kill", "mkdir in flight, server killed @ "+point, hostEnv.Name)
			for run := 0; run < faults.Runs() && !t.Failed(); run++ {
				round(r, point, func(s *server, done <-chan struct{}) {
					if !s.waitExit(30 * time.Second) {
						s.fail("the server was not killed at %s", point)
					}
					r.Check(strings.Contains(s.logText(), "crashpoint: "+point), "the server died, but not at %s", point)
				})
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		w.T, w.Fixture.T = t, t
		r := faults.Record(t, "fuse-kill", "mkdir in flight, server killed at a random moment", hostEnv.Name)
		rnd := rand.New(rand.NewSource(9))
		for run := 0; run < 4*faults.Runs() && !t.Failed(); run++ {
			delay := time.Duration(rnd.Intn(40)) * time.Millisecond
			round(r, fmt.Sprintf("kill after %v", delay), func(s *server, done <-chan struct{}) {
				select {
				case <-done:
				case <-time.After(delay):
				}
				s.kill()
			})
		}
	})
}
