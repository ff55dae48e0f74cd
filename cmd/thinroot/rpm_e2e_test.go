package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/procs"
	"github.com/thinroot/thinroot/internal/rpmdist"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// rpmCLI is the real binary with a config dir holding the test
// distribution's config, and its own state dir, basedir and cache.
func rpmCLI(t *testing.T) (*cliEnv, *rpmdist.Dist) {
	t.Helper()
	e := newCLI(t)
	d, err := rpmdist.Ensure(testguard.Context(t), lvmtest.TestWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	e.configs = filepath.Join(e.dir, "configs")
	if _, err := d.WriteMockConfig(e.configs, "testdist-x86_64"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.run("scrub", "testdist-x86_64") })
	return e, d
}

func (e *cliEnv) rpmCmd(args ...string) *exec.Cmd {
	cmd := e.cmd(args...)
	cmd.Env = append(cmd.Env, "THINROOT_CACHE_DIR="+filepath.Join(e.dir, "cache"))
	return cmd
}

func (e *cliEnv) rpmRun(args ...string) (string, int) {
	e.t.Helper()
	out, err := e.rpmCmd(args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		e.t.Fatalf("thinroot %v: %v", args, err)
	}
	return string(out), 0
}

// noMountsUnder fails the test when the host has any mount strictly
// under root (the workdir's own mount is root itself).
func noMountsUnder(t *testing.T, root string) {
	t.Helper()
	table, _ := mount.Table()
	for _, m := range table {
		if strings.HasPrefix(m.Mountpoint, root+"/") {
			t.Errorf("left mounted in the host's namespace: %s (%s)", m.Mountpoint, m.FSType)
		}
	}
}

// mock's RPM workflow from the command line: init with the real dnf,
// chroot and shell in the workdir with /proc and /dev, install into it,
// snapshot it, then RPM builds through the daemon from that snapshot with
// mock's exit statuses.
func TestCLIRPM(t *testing.T) {
	e, d := rpmCLI(t)
	const cfg = "testdist-x86_64"
	if out, code := e.rpmRun("config", "show", cfg); code != 0 || !strings.Contains(out, "__thinroot-rpm-bootstrap") {
		t.Fatalf("config show: %d\n%s", code, out)
	}
	start := time.Now()
	if out, code := e.rpmRun("init", cfg); code != 0 || !strings.Contains(out, "initialized "+cfg) || !strings.Contains(out, "Complete!") {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	t.Logf("TIME thinroot init %s (dnf bootstrap): %v", cfg, time.Since(start).Round(10*time.Millisecond))
	root := filepath.Join(e.mck, cfg, "root")

	// chroot: one word through the shell, several executed as they are.
	out, code := e.rpmRun("chroot", cfg, "--", "test -e /proc/self/status && test -c /dev/null && test -e /dev/pts/ptmx && echo proc-and-dev; touch /sys/x 2>/dev/null || echo sys-ro; echo cwd=$(pwd)")
	if code != 0 || !strings.Contains(out, "proc-and-dev") || !strings.Contains(out, "sys-ro") || !strings.Contains(out, "cwd=/\n") {
		t.Fatalf("chroot: exit %d\n%s", code, out)
	}
	if out, code := e.rpmRun("chroot", cfg, "--", "/usr/bin/id", "-u"); code != 0 || strings.TrimSpace(lastLine(out)) != "0" {
		t.Fatalf("chroot id -u: exit %d %q", code, out)
	}
	if out, code := e.rpmRun("chroot", cfg, "--unpriv", "--", "/usr/bin/id", "-u"); code != 0 || strings.TrimSpace(lastLine(out)) != "1000" {
		t.Fatalf("chroot --unpriv id -u: exit %d %q", code, out)
	}
	if _, code := e.rpmRun("chroot", cfg, "--", "exit 7"); code != 7 {
		t.Fatalf("chroot's exit status: %d, want 7", code)
	}
	// shell: the command line through the shell; stdin reaches it.
	sh := e.rpmCmd("shell", cfg)
	sh.Stdin = strings.NewReader("echo from-stdin; cat /proc/1/comm >/dev/null && echo has-proc; echo cwd=$(pwd); exit 4\n")
	b, err := sh.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 || !strings.Contains(string(b), "from-stdin") || !strings.Contains(string(b), "has-proc") ||
		!strings.Contains(string(b), "cwd=/builddir") {
		t.Fatalf("shell: %v\n%s", err, b)
	}
	noMountsUnder(t, root)

	// install: into the workdir, with mock's exit status on failure.
	if out, code := e.rpmRun("install", cfg, "thinroot-test-dep"); code != 0 {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	if out, code := e.rpmRun("chroot", cfg, "--", "thinroot-test-dep"); code != 0 || !strings.Contains(out, "1.0-1") {
		t.Fatalf("the installed package: exit %d %q", code, out)
	}
	if out, code := e.rpmRun("install", cfg, "thinroot-no-such-package"); code != 30 || !strings.Contains(out, "thinroot-no-such-package") {
		t.Fatalf("install of a missing package: exit %d\n%s", code, out)
	}
	e.ok("snapshot", cfg, "withdep")

	// The daemon builds from that snapshot (the config's current one).
	mnt := filepath.Join(e.dir, "tree")
	serve := e.rpmCmd("serve", "--mount", mnt, "--jobs", "2")
	var slog strings.Builder
	serve.Stdout, serve.Stderr = &slog, &slog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}()
	testguard.WaitFor(t, 20*time.Second, "the daemon's socket", func() bool {
		_, err := os.Stat(filepath.Join(e.dir, "api.sock"))
		return err == nil
	})
	out, code = e.rpmRun("build", cfg, "--srpm", d.SRPM(rpmdist.SRPMTiny), "--uniqueext", "tiny")
	if code != 0 || !strings.Contains(out, "built with thinroot-test-dep 1.0-1") {
		t.Fatalf("build --srpm: exit %d\n%s\n%s", code, out, slog.String())
	}
	if _, err := os.Stat(filepath.Join(e.mck, cfg+"-tiny", "result", "thinroot-test-tiny-1.0-1.td1.noarch.rpm")); err != nil {
		t.Fatalf("result: %v", err)
	}
	if !strings.Contains(out, "from snapshot withdep") {
		t.Errorf("the build did not start from the config's current snapshot:\n%s", out)
	}
	if out, code := e.rpmRun("build", cfg, "--srpm", d.SRPM(rpmdist.SRPMFail)); code != 1 || !strings.Contains(out, rpmdist.FailMarker) {
		t.Fatalf("failing build: exit %d, want rpmbuild's 1\n%s", code, out)
	} else if strings.Contains(out, "--memory-max") {
		t.Errorf("a build that failed in rpmbuild is told to take more memory:\n%s", out)
	}
	if _, code := e.rpmRun("build", cfg, "--srpm", "/nonexistent.src.rpm"); code == 0 {
		t.Fatal("a missing SRPM was accepted")
	}
	noMountsUnder(t, root)
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// A chroot killed with SIGKILL takes its processes along, and nothing it
// mounted outlives it.
func TestCLIChrootKilled(t *testing.T) {
	e, _ := rpmCLI(t)
	const cfg = "testdist-x86_64"
	if out, code := e.rpmRun("init", cfg); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	root := filepath.Join(e.mck, cfg, "root")
	for i, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		// The sleeps' own command lines carry the mark: a number of
		// seconds no other process sleeps.
		mark := fmt.Sprintf("9%08d%d", time.Now().UnixNano()%100000000, i)
		cmd := e.rpmCmd("chroot", cfg, "--", "/bin/sh", "-c", "sleep "+mark+"1 & exec sleep "+mark+"2")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sleeps := func() int {
			n := 0
			for _, pid := range procs.Marked(mark) {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "sleep" {
					n++
				}
			}
			return n
		}
		testguard.WaitFor(t, 20*time.Second, "the chroot's sleeps", func() bool { return sleeps() == 2 })
		// Its mounts exist, in its own namespace only.
		noMountsUnder(t, root)
		cmd.Process.Signal(sig)
		testguard.Call(t, "the killed chroot", func() error { cmd.Wait(); return nil })
		testguard.WaitFor(t, 10*time.Second, "every process of the chroot to die", func() bool { return len(procs.Marked(mark)) == 0 })
		if sleeps() != 0 {
			t.Errorf("after %v the chroot's sleeps live on", sig)
		}
		noMountsUnder(t, root)
	}
	// The workdir is whole and can be entered again.
	if out, code := e.rpmRun("chroot", cfg, "--", "test -d /builddir && echo again"); code != 0 || !strings.Contains(out, "again") {
		t.Fatalf("chroot after the kill: %d %s", code, out)
	}
}

// An interactive shell at a terminal: its standard input is the
// terminal, background jobs work, and exit leaves nothing behind.
func TestCLIShellTerminal(t *testing.T) {
	e, _ := rpmCLI(t)
	const cfg = "testdist-x86_64"
	if out, code := e.rpmRun("init", cfg); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	cmd := e.rpmCmd("shell", cfg)
	// script(1) gives the shell a terminal; its input is the session.
	cmd.Args = []string{"script", "-qec", strings.Join(shQuoteAll(append([]string{e.bin}, cmd.Args[1:]...)), " "), "/dev/null"}
	cmd.Path = "/usr/bin/script"
	cmd.Stdin = strings.NewReader("test -t 0 && echo TERMINAL-$((6*7)); sleep 0.1 & wait && echo JOB-$((6*8)); exit\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TERMINAL-42") || !strings.Contains(string(out), "JOB-48") {
		t.Fatalf("interactive shell: %v\n%s", err, out)
	}
	noMountsUnder(t, filepath.Join(e.mck, cfg, "root"))
}

func shQuoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}
