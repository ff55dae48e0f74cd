package cgroup_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
