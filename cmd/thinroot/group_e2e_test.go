package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// testUser is a user made for a test, removed when it ends.
type testUser struct {
	name     string
	uid, gid int
	groups   []uint32
}

func addGroup(t *testing.T, name string) int {
	t.Helper()
	if out, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("groupdel", name).Run() })
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return gid
}

func addUser(t *testing.T, name string, groups ...int) testUser {
	t.Helper()
	args := []string{"--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", "--user-group"}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tu := testUser{name: name}
	tu.uid, _ = strconv.Atoi(u.Uid)
	tu.gid, _ = strconv.Atoi(u.Gid)
	tu.groups = []uint32{uint32(tu.gid)}
	for _, g := range groups {
		tu.groups = append(tu.groups, uint32(g))
	}
	return tu
}

// as runs the CLI as u and returns its output, its standard error
// alone, and its exit status.
func (e *cliEnv) as(u testUser, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.cmd(args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: u.groups}}
	cmd.Env = append(cmd.Env, "HOME=/nonexistent", "USER="+u.name)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("thinroot %v as %s: %v", args, u.name, err)
	}
	return stdout.String(), stderr.String(), code
}

// The mock group without root: a member of the tree's group makes a
// workdir, a snapshot and a build through the daemon; a user outside it
// is refused, saying why, and can still list; without a daemon a user
// gets one line saying what is needed, and reading makes no state
// directory.
func TestGroupMembersWithoutRoot(t *testing.T) {
	e := newCLI(t)
	tag := strconv.Itoa(os.Getpid() % 100000)
	gid := addGroup(t, "trg"+tag)
	in := addUser(t, "trin"+tag, gid)
	out := addUser(t, "trout"+tag)
	os.Chmod(filepath.Dir(e.bin), 0o755)
	os.Chmod(e.dir, 0o755)
	os.Chmod(filepath.Dir(e.dir), 0o755)
	e.serveArgs = []string{"--group", "trg" + tag}
	e.serve()

	run := func(u testUser, want int, args ...string) (string, string) {
		t.Helper()
		so, se, code := e.as(u, args...)
		if code != want {
			t.Fatalf("thinroot %s as %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), u.name, code, want, so, se)
		}
		return so, se
	}
	run(in, 0, "init", "busybox")
	so, _ := run(in, 0, "workdir", "create", "busybox", "mine")
	if !strings.Contains(so, "busybox-mine/root") {
		t.Fatalf("workdir create printed %q", so)
	}
	run(in, 0, "snapshot", "busybox", "s1", "--uniqueext", "mine")
	if so, _ := run(in, 0, "list-snapshots", "busybox"); !strings.Contains(so, "s1") {
		t.Fatalf("list-snapshots as a member:\n%s", so)
	}
	if _, se := run(in, 0, "build", "busybox", "--", "/bin/sh", "-c", "echo built by $(id -u)"); !strings.Contains(se, "succeeded") {
		t.Fatalf("build as a member:\n%s", se)
	}

	_, se := run(out, 77, "workdir", "create", "busybox", "theirs")
	if !strings.Contains(se, fmt.Sprintf("uid %d may not run thinroot workdir create", out.uid)) || strings.Count(strings.TrimSpace(se), "\n") != 0 {
		t.Fatalf("an outsider's workdir create was refused with:\n%s", se)
	}
	t.Logf("an outsider's workdir create: %s", strings.TrimSpace(se))
	run(out, 77, "snapshot", "busybox", "s2", "--uniqueext", "mine")
	if so, _ := run(out, 0, "list-snapshots", "busybox"); !strings.Contains(so, "s1") {
		t.Fatalf("list-snapshots as an outsider:\n%s", so)
	}
	if so, _ := run(out, 0, "workdir", "list", "busybox"); !strings.Contains(so, "mine") {
		t.Fatalf("workdir list as an outsider:\n%s", so)
	}
	// Root never loads a config file of the caller's choosing (mock's -r
	// takes a path too), whose bootstrap it would run.
	evil := filepath.Join(e.dir, "evil.cfg")
	os.WriteFile(evil, []byte("config_opts['root'] = 'evil'\nconfig_opts['thinroot'] = {'bootstrap': ['/bin/sh', '-c', 'touch /tmp/owned']}\n"), 0o644)
	for _, name := range []string{evil, "../evil", "nosuch"} {
		_, se := run(in, 2, "init", name)
		if !strings.Contains(se, "not a plain name") && !strings.Contains(se, "not a config this daemon serves") {
			t.Fatalf("init %s as a member:\n%s", name, se)
		}
	}
	// A flag that would have root run what the caller chose stays refused.
	_, se = run(in, 77, "init", "busybox", "--", "/bin/sh", "-c", "id")
	if !strings.Contains(se, "needs root") {
		t.Fatalf("init with a bootstrap argv as a member:\n%s", se)
	}

	e.stopServe()
	_, se = run(in, 77, "list-snapshots", "busybox")
	if !strings.Contains(se, "needs root, or a running thinroot daemon") || strings.Count(strings.TrimSpace(se), "\n") != 0 {
		t.Fatalf("without a daemon:\n%s", se)
	}
	t.Logf("without a daemon: %s", strings.TrimSpace(se))
	// Root reading a state directory that is not there makes none.
	fresh := filepath.Join(e.dir, "fresh-state")
	cmd := e.cmd("--state-dir", fresh, "list-snapshots", "busybox")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("list-snapshots as root: %v\n%s", err, b)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("list-snapshots made %s (%v)", fresh, err)
	}
	e.ok("workdir", "remove", "busybox", "mine")
}
