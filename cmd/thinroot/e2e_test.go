package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/testbin"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Main()
	code := testguard.Main(m)
	testbin.Remove()
	os.Exit(code)
}

// cliEnv runs the real binary against a scratch state dir and basedir,
// with the repository's test configs.
type cliEnv struct {
	t          *testing.T
	bin, dir   string
	configs    string
	state, mck string
}

func newCLI(t *testing.T) *cliEnv {
	lvmtest.RequireRoot(t)
	repo := lvmtest.RepoRoot(t)
	dir := t.TempDir()
	e := &cliEnv{t: t, bin: testbin.Thinroot(t, repo), dir: dir, configs: filepath.Join(repo, "testdata", "configs"),
		state: filepath.Join(dir, "state"), mck: filepath.Join(dir, "mock")}
	t.Cleanup(func() {
		e.run("scrub", "busybox")
		table, _ := mount.Table()
		for _, m := range table {
			if strings.HasPrefix(m.Mountpoint, dir+"/") {
				mount.Unmount(m.Mountpoint, true)
			}
		}
	})
	return e
}

func (e *cliEnv) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "THINROOT_STATE_DIR="+e.state, "THINROOT_BASEDIR="+e.mck,
		"THINROOT_CONFIG_DIR="+e.configs, "THINROOT_SOCKET="+filepath.Join(e.dir, "api.sock"))
	cmd.Dir = "/"
	return cmd
}

func (e *cliEnv) run(args ...string) (string, int) {
	out, err := e.cmd(args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		e.t.Fatalf("thinroot %v: %v", args, err)
	}
	return string(out), 0
}

func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	out, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("thinroot %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// The CLI driven from mock config files: list and show configs, init,
// workdirs, snapshots, then the daemon with builds and the tree.
func TestCLIFromConfigFiles(t *testing.T) {
	e := newCLI(t)
	if out := e.ok("config", "list"); !strings.Contains(out, "busybox\n") {
		t.Fatalf("config list: %q", out)
	}
	var names []string
	if err := json.Unmarshal([]byte(e.ok("config", "list", "--json")), &names); err != nil || len(names) < 2 {
		t.Fatalf("config list --json: %v %v", names, err)
	}
	var rendered map[string]any
	if err := json.Unmarshal([]byte(e.ok("config", "show", "busybox", "--json")), &rendered); err != nil || rendered["root"] != "busybox" {
		t.Fatalf("config show --json: %v", err)
	}
	if out, code := e.run("init", "no-such-config"); code == 0 || !strings.Contains(out, "no-such-config") {
		t.Fatalf("init of a missing config: %d %q", code, out)
	}

	// The bootstrap's relative path is relative to the config file, so
	// this works from "/".
	if out := e.ok("init", "busybox"); !strings.Contains(out, "initialized busybox") {
		t.Fatalf("init: %q", out)
	}
	if out := e.ok("init", "busybox"); !strings.Contains(out, "already initialized") {
		t.Fatalf("second init: %q", out)
	}
	root := strings.TrimSpace(e.ok("workdir", "create", "busybox", "try1"))
	if root != filepath.Join(e.mck, "busybox-try1", "root") {
		t.Fatalf("workdir at %q", root)
	}
	lvmtest.Chroot(t, root, "echo patched > /etc/patched")
	e.ok("snapshot", "busybox", "patched", "--uniqueext", "try1")
	if out := e.ok("list-snapshots", "busybox", "--uniqueext", "try1"); out != "Snapshots for busybox:\n* patched\n  postinit\n" {
		t.Fatalf("list-snapshots in mock's format: %q", out)
	}
	if out, code := e.run("remove-snapshot", "busybox", "postinit"); code == 0 || !strings.Contains(out, "postinit") {
		t.Fatalf("remove postinit: %d %q", code, out)
	}

	// The daemon: tree, builder, API.
	mnt := filepath.Join(e.dir, "tree")
	testguard.Unwedge(t, mnt)
	serve := e.cmd("serve", "--mount", mnt, "--jobs", "2")
	stderr, _ := serve.StderrPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}()
	deadline := testguard.Deadline(t)
	for {
		if _, err := os.Stat(filepath.Join(e.dir, "api.sock")); err == nil {
			break
		}
		if time.Now().After(deadline) || serve.ProcessState != nil {
			serve.Process.Kill()
			serve.Wait()
			t.Fatalf("the daemon did not open its socket:\n%s", <-logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lvmtest.WaitFor(t, 20*time.Second, "the tree", func() bool {
		_, err := os.Stat(filepath.Join(mnt, "README"))
		return err == nil
	})
	src := filepath.Join(lvmtest.RepoRoot(t), "testdata", "demo", "source")
	out, code := e.run("build", "busybox", "--source", src, "--snapshot", "patched", "--keep", "--uniqueext", "b1")
	if code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	art, err := os.ReadFile(filepath.Join(e.mck, "busybox-b1", "result", "artifact.txt"))
	if err != nil || !strings.Contains(string(art), "THIN VOLUMES MAKE CHEAP BUILDROOTS") {
		t.Fatalf("artifact %q %v", art, err)
	}
	if got := lvmtest.Chroot(t, filepath.Join(mnt, "workdirs", "busybox.b1"), "cat /etc/patched"); got != "patched\n" {
		t.Fatalf("the kept workdir is not reachable through the tree or not from the snapshot: %q", got)
	}
	out, code = e.run("build", "busybox", "--", "/bin/sh", "-c", "echo about to fail; exit 7")
	if code != 7 || !strings.Contains(out, "about to fail") {
		t.Fatalf("failing build: exit %d\n%s", code, out)
	}
	out, code = e.run("build", "busybox", "--timeout", "1s", "--", "/bin/sleep", "60")
	if code != 124 {
		t.Fatalf("timed-out build: exit %d\n%s", code, out)
	}
	list := e.ok("builds")
	if strings.Count(list, "  busybox  ") != 3 || !strings.Contains(list, "succeeded") || !strings.Contains(list, "timed-out") {
		t.Fatalf("builds:\n%s", list)
	}
	ids, _ := os.ReadDir(filepath.Join(mnt, "builds"))
	if len(ids) != 3 {
		t.Fatalf("the tree shows %d builds, want 3", len(ids))
	}
	status, err := os.ReadFile(filepath.Join(mnt, "builds", ids[0].Name(), "status"))
	if err != nil || !strings.Contains(string(status), "state: succeeded") {
		t.Fatalf("status of the first build: %q %v", status, err)
	}
	if res, err := os.Readlink(filepath.Join(mnt, "builds", ids[0].Name(), "result")); err != nil || res != filepath.Join(e.mck, "busybox-b1", "result") {
		t.Fatalf("result link %q %v", res, err)
	}
	if out, code := e.run("cancel", ids[0].Name()); code == 0 || !strings.Contains(out, "already ended") {
		t.Fatalf("cancel of a finished build: %d %q", code, out)
	}
	serve.Process.Signal(syscall.SIGTERM)
	serve.Wait()
	if l := <-logs; !strings.Contains(l, "tree unmounted") {
		t.Fatalf("serve did not unmount cleanly:\n%s", l)
	}
	if ok, _ := mount.IsMountpoint(mnt); ok {
		t.Fatal("the tree is still mounted after SIGTERM")
	}
}

// thinroot serve killed with SIGKILL leaves its tree's mount point dead
// (ENOTCONN); the next serve on the same mount point detaches it and
// comes up, as thinroot mount does.
func TestServeRestartsAfterKill(t *testing.T) {
	e := newCLI(t)
	mnt := filepath.Join(e.dir, "tree")
	testguard.Unwedge(t, mnt)
	start := func() *exec.Cmd {
		t.Helper()
		serve := e.cmd("serve", "--mount", mnt, "--jobs", "1", "--refresh", "100ms")
		var log strings.Builder
		serve.Stdout, serve.Stderr = &log, &log
		if err := serve.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { serve.Wait(); close(done) }()
		deadline := testguard.Deadline(t)
		for {
			if _, err := os.Stat(filepath.Join(mnt, "README")); err == nil {
				return serve
			}
			select {
			case <-done:
				t.Fatalf("serve exited: %v\n%s", serve.ProcessState, log.String())
			default:
			}
			if time.Now().After(deadline) {
				serve.Process.Kill()
				t.Fatalf("the tree did not come up:\n%s", log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	serve := start()
	serve.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 100 && serve.ProcessState == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	// Once the kernel's cached attributes of the mount point expire (one
	// refresh interval), even a stat of it fails with ENOTCONN.
	time.Sleep(400 * time.Millisecond)
	serve = start()
	serve.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 200 && serve.ProcessState == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Unmount(mnt, syscall.MNT_DETACH)
}
