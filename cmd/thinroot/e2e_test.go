package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/cgroup"
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

// cliEnv runs the real binary against a scratch state dir, basedir and
// socket, with the repository's test configs.
type cliEnv struct {
	t          *testing.T
	bin, dir   string
	configs    string
	state, mck string
	cleanups   [][]string // commands to run at the end (scrubs)
	stopServe  func() string
	serveArgs  []string // more flags for serve
	// cgroupParent holds the cgroups of the daemon's builds and of
	// shells: one the test guard removes and reports if left.
	cgroupParent string
}

// newCLI is a CLI environment for tests that make pools (root).
func newCLI(t *testing.T) *cliEnv { return newCLIEnv(t, true) }

func newCLIEnv(t *testing.T, root bool) *cliEnv {
	if root {
		lvmtest.RequireRoot(t)
	}
	repo := lvmtest.RepoRoot(t)
	dir := t.TempDir()
	e := &cliEnv{t: t, bin: testbin.Thinroot(t, repo), dir: dir, configs: filepath.Join(repo, "testdata", "configs"),
		state: filepath.Join(dir, "state"), mck: filepath.Join(dir, "mock"), cgroupParent: cgroup.TestParent()}
	if root {
		e.cleanups = [][]string{{"scrub", "busybox"}}
		t.Cleanup(func() {
			for _, c := range e.cleanups {
				e.run(c...)
			}
			table, _ := mount.Table()
			for _, m := range table {
				if strings.HasPrefix(m.Mountpoint, dir+"/") {
					mount.Unmount(m.Mountpoint, true)
				}
			}
		})
	}
	return e
}

func (e *cliEnv) socket() string { return filepath.Join(e.dir, "api.sock") }

func (e *cliEnv) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "THINROOT_STATE_DIR="+e.state, "THINROOT_BASEDIR="+e.mck,
		"THINROOT_CONFIG_DIR="+e.configs, "THINROOT_SOCKET="+e.socket(), "THINROOT_LOG_LEVEL=", "COLUMNS=",
		"THINROOT_CGROUP_PARENT="+e.cgroupParent)
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
	r := e.x(args...)
	if r.code != 0 {
		e.t.Fatalf("thinroot %s: %s", strings.Join(args, " "), r)
	}
	return r.out
}

// serve starts the daemon with its tree at dir/tree and returns the mount
// point; it is stopped with SIGTERM when the test ends.
func (e *cliEnv) serve() string {
	t := e.t
	mnt := filepath.Join(e.dir, "tree")
	testguard.Unwedge(t, mnt)
	// Only busybox: the other test configs name an lvm2 volume group.
	serve := e.cmd(append([]string{"serve", "--mount", mnt, "--jobs", "2", "-r", "busybox"}, e.serveArgs...)...)
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
	stopped := false
	stop := func() string {
		if stopped {
			return ""
		}
		stopped = true
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
		return <-logs
	}
	t.Cleanup(func() { stop() })
	deadline := testguard.Deadline(t)
	for {
		if _, err := os.Stat(e.socket()); err == nil {
			break
		}
		if time.Now().After(deadline) || serve.ProcessState != nil {
			serve.Process.Kill()
			t.Fatalf("the daemon did not open its socket:\n%s", stop())
		}
		time.Sleep(50 * time.Millisecond)
	}
	lvmtest.WaitFor(t, 20*time.Second, "the tree", func() bool {
		_, err := os.Stat(filepath.Join(mnt, "README"))
		return err == nil
	})
	e.stopServe = stop
	return mnt
}

// buildID finds the id in build's "thinroot: build ID queued" line.
func buildID(t *testing.T, stderr string) string {
	t.Helper()
	m := regexp.MustCompile(`thinroot: build (\S+) queued`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no build id in:\n%s", stderr)
	}
	return m[1]
}

// The CLI driven from mock config files: configs, init with its phases,
// workdirs, snapshots, then the daemon with builds, logs, wait, the
// exit statuses, JSON and completion from the daemon's state.
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

	// Finding 10: init shows its phases and their times, as build does.
	// The bootstrap's relative path is relative to the config file, so
	// this works from "/".
	r := e.x("init", "busybox")
	if r.code != 0 || !strings.Contains(r.out, "initialized busybox") {
		t.Fatalf("init: %s", r)
	}
	for _, re := range []string{`thinroot: \[00:0\d\] preparing the pool \(mockbuild\)`, `thinroot: \[00:\d\d\] bootstrapping busybox: /bin/sh \.\./bootstrap/busybox\.sh`,
		`bootstrapped busybox root`, `thinroot: \[00:\d\d\] done: took \d`} {
		if !regexp.MustCompile(re).MatchString(r.err) {
			t.Errorf("init's progress lacks %s:\n%s", re, r.err)
		}
	}
	if strings.Contains(r.err, "level=INFO") {
		t.Errorf("init logs its work at info by default:\n%s", r.err)
	}
	if out := e.ok("init", "busybox"); !strings.Contains(out, "already initialized") {
		t.Fatalf("second init: %q", out)
	}

	// Finding 3: what to do, in one line.
	wantErr(t, e.x("snapshot", "busybox", "mysnap"), exitVolume, "no workdir for unique-ext head", "--uniqueext", "thinroot workdir create busybox head")
	wantErr(t, e.x("remove-snapshot", "busybox", "postinit"), exitVolume, "will not remove postinit", "mock refuses it too", "thinroot scrub busybox")
	wantErr(t, e.x("rollback-to", "busybox", "nosnap"), exitVolume, `config busybox has no snapshot "nosnap"`, "it has postinit")
	wantErr(t, e.x("workdir", "remove", "busybox", "nope"), exitVolume, "has no workdir nope", "thinroot workdir list busybox")

	root := strings.TrimSpace(e.ok("workdir", "create", "busybox", "try1"))
	if root != filepath.Join(e.mck, "busybox-try1", "root") {
		t.Fatalf("workdir at %q", root)
	}
	lvmtest.Chroot(t, root, "echo patched > /etc/patched")
	e.ok("snapshot", "busybox", "patched", "--uniqueext", "try1")
	if out := e.ok("list-snapshots", "busybox", "--uniqueext", "try1"); out != "Snapshots for busybox:\n* patched\n  postinit\n" {
		t.Fatalf("list-snapshots in mock's format: %q", out)
	}
	wantErr(t, e.x("snapshot", "busybox", "patched", "--uniqueext", "try1"), exitVolume, "already exists", "choose another name")

	// Finding 6: JSON, one schema, the tree's objects.
	var snaps []map[string]any
	if err := json.Unmarshal([]byte(e.ok("list-snapshots", "busybox", "--uniqueext", "try1", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("list-snapshots --json: %v %v", snaps, err)
	}
	checkSnakeCase(t, "list-snapshots --json", snaps)
	if snaps[0]["name"] != "patched" || snaps[0]["current"] != true || snaps[0]["origin"] != "workdir try1" ||
		snaps[1]["name"] != "postinit" || snaps[1]["current"] != false || snaps[1]["origin"] != "bootstrap" {
		t.Errorf("list-snapshots --json: %v", snaps)
	}
	var wds []map[string]any
	if err := json.Unmarshal([]byte(e.ok("workdir", "list", "--json")), &wds); err != nil || len(wds) != 1 {
		t.Fatalf("workdir list --json: %v %v", wds, err)
	}
	checkSnakeCase(t, "workdir list --json", wds)
	if wds[0]["config"] != "busybox" || wds[0]["ext"] != "try1" || wds[0]["state"] != "mounted" || wds[0]["mountpoint"] != root {
		t.Errorf("workdir list --json: %v", wds)
	}
	var pools []map[string]any
	if err := json.Unmarshal([]byte(e.ok("pool", "list", "--json")), &pools); err != nil || len(pools) != 1 || pools[0]["pool"] != "mockbuild" {
		t.Fatalf("pool list --json: %v %v", pools, err)
	}
	checkSnakeCase(t, "pool list --json", pools)
	if u, _ := pools[0]["updated"].(string); strings.Contains(u, ".") {
		t.Errorf("pool list --json: updated %q has fractions of a second", u)
	}

	// The daemon: tree, builder, API.
	mnt := e.serve()

	// The tree's info files are the same objects.
	var info map[string]any
	data, _ := os.ReadFile(filepath.Join(mnt, "pools", "mockbuild", "configs", "busybox", "snapshots", "postinit", "try1", ".info.json"))
	if err := json.Unmarshal(data, &info); err != nil || info["ext"] != wds[0]["ext"] || info["created"] != wds[0]["created"] {
		t.Errorf("the tree's .info.json %v (%v), workdir list --json %v", info, err, wds[0])
	}

	// Findings 3 and 4: a config or snapshot the daemon lacks is refused
	// up front, with a reason in words and a status of its own.
	before := strings.Count(e.ok("builds"), "\n")
	r = e.x("build", "nosuch", "--", "/bin/true")
	wantErr(t, r, exitConfig, `the daemon has no config "nosuch"`, "restart it")
	if strings.Contains(r.err, "HTTP") || strings.Contains(r.err, "bad request") {
		t.Errorf("the daemon's error is passed on raw: %s", r.err)
	}
	wantErr(t, e.x("build", "busybox", "--snapshot", "nosnap", "--", "/bin/true"), exitVolume, "config busybox has no snapshot nosnap", "patched", "postinit")
	if after := strings.Count(e.ok("builds"), "\n"); after != before {
		t.Errorf("refused builds were queued: %d builds listed, then %d", before, after)
	}

	src := filepath.Join(lvmtest.RepoRoot(t), "testdata", "demo", "source")
	r = e.x("build", "busybox", "--source", src, "--snapshot", "patched", "--keep", "--uniqueext", "b1")
	if r.code != 0 || !strings.Contains(r.out, "done") || !strings.Contains(r.err, "] building") {
		t.Fatalf("build: %s", r)
	}
	art, err := os.ReadFile(filepath.Join(e.mck, "busybox-b1", "result", "artifact.txt"))
	if err != nil || !strings.Contains(string(art), "THIN VOLUMES MAKE CHEAP BUILDROOTS") {
		t.Fatalf("artifact %q %v", art, err)
	}
	if got := lvmtest.Chroot(t, filepath.Join(mnt, "workdirs", "busybox.b1"), "cat /etc/patched"); got != "patched\n" {
		t.Fatalf("the kept workdir is not reachable through the tree or not from the snapshot: %q", got)
	}
	r = e.x("build", "busybox", "--", "/bin/sh", "-c", "echo about to fail; exit 7")
	if r.code != 7 || !strings.Contains(r.out, "about to fail") || !strings.Contains(r.err, "failed with exit status 7") {
		t.Fatalf("failing build: %s", r)
	}

	// Finding 5: a timeout is 11, in the CLI, the record and the tree.
	r = e.x("build", "busybox", "--timeout", "1s", "--", "/bin/sleep", "60")
	if r.code != exitTimeout || !strings.Contains(r.err, "timed out after 1s") {
		t.Fatalf("timed-out build: %s", r)
	}
	id := buildID(t, r.err)
	var recs []map[string]any
	if err := json.Unmarshal([]byte(e.ok("builds", id, "--json")), &recs); err != nil || len(recs) != 1 ||
		recs[0]["state"] != "timed-out" || recs[0]["exit_code"] != float64(11) {
		t.Fatalf("the record of a timed-out build: %v %v", recs, err)
	}
	checkSnakeCase(t, "builds --json", recs)
	if st, _ := os.ReadFile(filepath.Join(mnt, "builds", id, "status")); !strings.Contains(string(st), "exit_code: 11\n") {
		t.Errorf("the tree's status of a timed-out build:\n%s", st)
	}

	// Finding 7: a detached build can be followed and waited for.
	id = strings.TrimSpace(e.ok("build", "busybox", "--detach", "--", "/bin/sh", "-c", "echo one; sleep 1; echo two; exit 3"))
	if out := e.ok("logs", "-f", id); !strings.Contains(out, "one\n") || !strings.Contains(out, "two\n") {
		t.Errorf("logs -f: %q", out)
	}
	r = e.x("wait", id, "--json")
	var fin map[string]any
	if r.code != 3 || json.Unmarshal([]byte(r.out), &fin) != nil || fin["exit_code"] != float64(3) || !strings.Contains(r.err, "failed with exit status 3") {
		t.Errorf("wait: %s", r)
	}
	if out := e.ok("logs", id); !strings.Contains(out, "two\n") {
		t.Errorf("logs of an ended build: %q", out)
	}
	wantErr(t, e.x("logs", "nosuch"), exitUsage, `no build "nosuch"`, "thinroot builds")
	wantErr(t, e.x("cancel", id), exitError, "has already ended (failed)")

	// Ctrl-C on build says how to follow, wait or cancel, and exits 7.
	cmd := e.cmd("build", "busybox", "--", "/bin/sh", "-c", "sleep 2; echo finished")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lvmtest.WaitFor(t, 30*time.Second, "the build to run", func() bool { return strings.Contains(stderr.String(), "] building") })
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	id = buildID(t, stderr.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Errorf("Ctrl-C on build: %v, want exit 7\n%s", err, stderr.String())
	}
	for _, want := range []string{"stopped following build " + id + "; it goes on", "thinroot logs -f " + id, "thinroot wait " + id, "thinroot cancel " + id} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("Ctrl-C on build: %q missing:\n%s", want, stderr.String())
		}
	}
	if r := e.x("wait", id); r.code != 0 {
		t.Errorf("the build left by Ctrl-C: %s", r)
	}

	// Finding 9: completion from the daemon's state.
	comp := func(words ...string) string {
		return e.x(append([]string{"__complete", itoa(len(words))}, words...)...).out
	}
	if got := comp("logs", ""); !strings.Contains(got, id+"\n") {
		t.Errorf("logs <TAB>: %q, want build %s", got, id)
	}
	if got := comp("rollback-to", "busybox", ""); got != "patched\npostinit\n" {
		t.Errorf("rollback-to busybox <TAB>: %q", got)
	}
	if got := comp("build", "busybox", "--snapshot", ""); got != "patched\npostinit\n" {
		t.Errorf("--snapshot <TAB>: %q", got)
	}
	if got := comp("workdir", "remove", "busybox", ""); !strings.Contains(got, "try1\n") || strings.Contains(got, "postinit") {
		t.Errorf("workdir remove busybox <TAB>: %q", got)
	}
	if got := comp("pool", "stats", ""); got != "mockbuild\n" {
		t.Errorf("pool stats <TAB>: %q", got)
	}

	list := e.ok("builds")
	if !strings.Contains(list, "succeeded") || !strings.Contains(list, "timed-out") {
		t.Fatalf("builds:\n%s", list)
	}
	status, err := os.ReadFile(filepath.Join(mnt, "builds", buildIDs(t, mnt)[0], "status"))
	if err != nil || !strings.Contains(string(status), "state: succeeded") {
		t.Fatalf("status of the first build: %q %v", status, err)
	}
	if l := e.stopServe(); !strings.Contains(l, "tree unmounted") {
		t.Fatalf("serve did not unmount cleanly:\n%s", l)
	}
	if ok, _ := mount.IsMountpoint(mnt); ok {
		t.Fatal("the tree is still mounted after SIGTERM")
	}
	// Without the daemon, completion scans this host's state.
	if got := comp("rollback-to", "busybox", ""); got != "patched\npostinit\n" {
		t.Errorf("rollback-to busybox <TAB> without the daemon: %q", got)
	}
	e.ok("workdir", "remove", "busybox", "try1")
	e.ok("workdir", "remove", "busybox", "b1")
}

func buildIDs(t *testing.T, mnt string) []string {
	ents, err := os.ReadDir(filepath.Join(mnt, "builds"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		ids = append(ids, e.Name())
	}
	return ids
}

// An ad hoc config (a name without a file, defined by flags) works like a
// file's; a failed bootstrap is exit 30, a busy workdir 60.
func TestAdHocConfig(t *testing.T) {
	e := newCLI(t)
	def := []string{"--pool", "adhoc", "--size", "1G", "--pool-size", "2G"}
	e.cleanups = append(e.cleanups, append([]string{"scrub", "adhoc1"}, def...))
	boot := lvmtest.BootstrapScript(t)
	if r := e.x(append(append([]string{"init", "adhoc1"}, def...), "--", "/bin/sh", boot)...); r.code != 0 {
		t.Fatalf("init of an ad hoc config: %s", r)
	}
	if out := e.ok(append([]string{"list-snapshots", "adhoc1"}, def...)...); out != "Snapshots for adhoc1:\n* postinit\n" {
		t.Errorf("list-snapshots of an ad hoc config: %q", out)
	}
	// Only the flags that find it are needed once it exists.
	if out := e.ok("list-snapshots", "adhoc1", "--ad-hoc", "--pool", "adhoc"); out != "Snapshots for adhoc1:\n* postinit\n" {
		t.Errorf("list-snapshots --ad-hoc: %q", out)
	}
	wantErr(t, e.x("list-snapshots", "adhoc1", "--pool", "elsewhere"), exitConfig, `no config "adhoc1"`, "pool elsewhere holds no volumes of it")

	r := e.x(append(append([]string{"init", "adhoc2"}, def...), "--", "/bin/sh", "-c", "echo cannot install; exit 1")...)
	lines := strings.Split(strings.TrimSpace(r.err), "\n")
	if r.code != exitBootstrap || !strings.Contains(r.err, "cannot install\n") ||
		!strings.HasPrefix(lines[len(lines)-1], "thinroot init: the bootstrap of adhoc2 failed (exit status 1); its output is above; nothing was kept") {
		t.Errorf("a failed bootstrap: %s", r)
	}

	root := strings.TrimSpace(e.ok(append([]string{"workdir", "create", "adhoc1", "w"}, def...)...))
	busy := exec.Command("/bin/sleep", "60")
	busy.Dir = root
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	r = e.x(append([]string{"workdir", "remove", "adhoc1", "w"}, def...)...)
	busy.Process.Kill()
	busy.Wait()
	wantErr(t, r, exitBusy, "in use")
	e.ok(append([]string{"workdir", "remove", "adhoc1", "w"}, def...)...)
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
