package cgroup_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/internal/testguard"
)

func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }

// A real group: its limits are in the kernel's files, a process added
// to it is counted, Kill empties it and Remove leaves nothing.
func TestGroupOnThisHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	m, err := Open(TestParent())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Remove(); err != nil {
			t.Errorf("parent left behind: %v", err)
		}
	}()
	g, err := m.New("g1", Limits{MemoryMax: 64 << 20, PidsMax: 16, CPUs: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testguard.Context(t)
	defer g.Remove(ctx)
	// The shell forks only once it is in the group.
	cmd := exec.Command("/bin/sh", "-c", "read go; sleep 1000 & sleep 1001 & wait")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	if err := g.Add(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	fmt.Fprintln(in, "go")
	testguard.WaitFor(t, 10*time.Second, "three processes in the group", func() bool { return len(g.Pids()) == 3 })
	if u := g.Usage(); u.PidsPeak < 1 || u.MemoryPeak <= 0 {
		t.Fatalf("usage %+v", u)
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Kill(kctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(kctx); err != nil {
		t.Fatal(err)
	}
	if left := m.Groups(); len(left) != 0 {
		t.Fatalf("groups left: %v", left)
	}
}

// cgroup v2, where it can be had: in the test VM (make test-vm), whose
// kernel mounts no v1 controllers, on a cgroup2 file system mounted here.
// A memory hog is killed at its limit, a fork bomb stops at its pids
// limit, and Kill and Remove leave nothing.
func TestGroupOnCgroupV2(t *testing.T) {
	if os.Getenv("THINROOT_VM") != "1" {
		t.Skip("cgroup v2 is tested in the VM (make test-vm): this host's controllers are on v1")
	}
	umount, err := MountV2ForTest()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(umount)
	m, err := Open(TestParent())
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != 2 {
		t.Fatalf("version %d on cgroup2", m.Version())
	}
	defer func() {
		if err := m.Remove(); err != nil {
			t.Errorf("parent left behind: %v", err)
		}
	}()
	ctx := testguard.Context(t)
	run := func(name string, l Limits, script string) Usage {
		t.Helper()
		g, err := m.New(name, l)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Remove(ctx)
		fd, ok := g.FD()
		if !ok {
			t.Fatal("no directory to clone into")
		}
		defer syscall.Close(fd)
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := g.Kill(kctx); err != nil {
			t.Fatal(err)
		}
		<-done
		u := g.Usage()
		if err := g.Remove(kctx); err != nil {
			t.Fatal(err)
		}
		return u
	}
	u := run("hog", Limits{MemoryMax: 32 << 20}, `awk 'BEGIN { s = "0123456789abcdef"; while (length(s) < 512 * 1024 * 1024) s = s s }'`)
	t.Logf("memory hog on v2: %+v", u)
	if u.OOMKills == 0 || u.MemoryPeak > 32<<20 {
		t.Fatalf("memory hog on v2: %+v", u)
	}
	u = run("bomb", Limits{PidsMax: 16, CPUs: 0.5}, `f() { f | f & }; f; sleep 3`)
	t.Logf("fork bomb on v2: %+v", u)
	if u.PidsRefused == 0 || (u.PidsPeak != 0 && u.PidsPeak > 16) {
		t.Fatalf("fork bomb on v2: %+v", u)
	}
	if left := m.Groups(); len(left) != 0 {
		t.Fatalf("groups left: %v", left)
	}

	// As a service with Delegate=yes: the daemon's own group is not the
	// root, so it moves to a leaf of its own before its group can hand
	// out controllers to the builds' parent.
	svc := filepath.Join(Root, fmt.Sprintf("svc-%d", os.Getpid()))
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, v string) {
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(Root, "cgroup.subtree_control"), "+memory +pids +cpu")
	write(filepath.Join(svc, "cgroup.procs"), "0")
	defer func() {
		write(filepath.Join(Root, "cgroup.procs"), "0")
		os.Remove(filepath.Join(svc, "daemon"))
		os.Remove(svc)
	}()
	m2, err := Open(TestParent())
	if err != nil {
		t.Fatalf("open under a service's group: %v", err)
	}
	own, _ := os.ReadFile("/proc/self/cgroup")
	if !strings.Contains(string(own), filepath.Base(svc)+"/daemon") {
		t.Fatalf("the process did not move to its group's daemon leaf: %s", own)
	}
	g, err := m2.New("g", Limits{PidsMax: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.Remove(); err != nil {
		t.Fatal(err)
	}
}

// Two daemons share a parent; the one that stops removes it when it is
// empty, and the other's next group must still be made.
func TestParentRemovedByAnotherDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	name := TestParent()
	first, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Remove(); err != nil {
		t.Fatalf("the stopping daemon removes the empty parent: %v", err)
	}
	g, err := first.New("after", Limits{PidsMax: 8})
	if err != nil {
		t.Fatalf("a group after the parent went: %v", err)
	}
	if err := g.Remove(testguard.Context(t)); err != nil {
		t.Fatal(err)
	}
	if err := first.Remove(); err != nil {
		t.Errorf("parent left behind: %v", err)
	}
}
