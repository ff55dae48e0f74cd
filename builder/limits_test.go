package builder_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/internal/procs"
	"github.com/thinroot/thinroot/internal/testguard"
)

// testCgroups opens a cgroup parent of the test's own, removed (and
// checked empty) when it ends.
func testCgroups(t *testing.T) *cgroup.Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	umount, err := cgroup.MountV2ForTest()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(umount)
	m, err := cgroup.Open(cgroup.TestParent())
	if err != nil {
		t.Fatalf("cgroups: %v", err)
	}
	t.Cleanup(func() {
		if left := m.Groups(); len(left) > 0 {
			t.Errorf("cgroups left behind: %v", left)
		}
		if err := m.Remove(); err != nil {
			t.Errorf("remove the test's cgroup parent: %v", err)
		}
	})
	return m
}

// A build that allocates past its memory limit fails for that reason,
// one that forks without end stops at its pids limit and one that spins
// gets its share of CPU, while another build on the same daemon
// succeeds; none leaves a process or a cgroup.
func TestLimitsMemoryHogAndForkBomb(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	w := newWorld(t, 4)
	w.f.Init(0)
	hog := w.submit(t, builder.Request{
		Command: []string{"/bin/sh", "-c", `echo started; awk 'BEGIN { s = "0123456789abcdef"; while (length(s) < 512 * 1024 * 1024) s = s s }'`},
		Limits:  builder.Limits{MemoryMax: 64 << 20}})
	bomb := w.submit(t, builder.Request{
		Command: []string{"/bin/sh", "-c", `f() { f | f & }; f; sleep 4; echo survived`},
		Limits:  builder.Limits{PidsMax: 48, CPUs: 0.5}, Timeout: builder.Duration(20 * time.Second)})
	spin := w.submit(t, builder.Request{
		Command: []string{"/bin/sh", "-c", `echo started; while :; do :; done`},
		Limits:  builder.Limits{CPUs: 0.2}, Timeout: builder.Duration(3 * time.Second)})
	good := w.submit(t, builder.Request{Source: w.src})

	g := w.wait(t, good.ID)
	if g.State != builder.StateSucceeded {
		t.Fatalf("the good build beside a hog and a bomb: %s (%s)\n%s", g.State, g.Error, readLog(t, w, good.ID))
	}
	if g.Usage == nil || g.Usage.CPUSeconds <= 0 || g.Usage.MemoryPeak <= 0 || g.Usage.PidsPeak <= 0 {
		t.Fatalf("the good build's usage: %+v", g.Usage)
	}

	h := w.wait(t, hog.ID)
	t.Logf("memory hog: %s: %s; usage %+v", h.State, h.Error, *h.Usage)
	if h.State != builder.StateFailed || !strings.HasPrefix(h.Error, "out of memory (limit 64 MiB, peak ") {
		t.Fatalf("the memory hog ended %s (%s), want failed: out of memory\n%s", h.State, h.Error, readLog(t, w, hog.ID))
	}
	if h.Usage.OOMKills == 0 || h.Usage.MemoryPeak > 64<<20 || h.Usage.MemoryPeak < 32<<20 {
		t.Fatalf("the memory hog's usage: %+v", *h.Usage)
	}
	if !strings.Contains(readLog(t, w, hog.ID), "out of memory (limit 64 MiB") {
		t.Fatalf("the log does not say why:\n%s", readLog(t, w, hog.ID))
	}

	bb := w.wait(t, bomb.ID)
	t.Logf("fork bomb: %s (exit status %v %s); usage %+v", bb.State, *bb.ExitCode, bb.Error, *bb.Usage)
	if bb.Usage.PidsPeak > 48 || bb.Usage.PidsRefused == 0 {
		t.Fatalf("the fork bomb went past its pids limit: %+v", *bb.Usage)
	}
	if bb.Limits.PidsMax != 48 || bb.Limits.CPUs != 0.5 {
		t.Fatalf("limits on record: %+v", bb.Limits)
	}
	// A spinner held to a fifth of a CPU, stopped by its timeout with
	// nothing left running.
	sp := w.wait(t, spin.ID)
	t.Logf("CPU spinner: %s; usage %+v", sp.State, *sp.Usage)
	if sp.State != builder.StateTimedOut || sp.Usage.CPUSeconds > 0.2*3+0.5 {
		t.Fatalf("the CPU spinner: %s, usage %+v (limit 0.2 CPUs for 3 s)", sp.State, *sp.Usage)
	}
	assertGone(t, w, hog.ID, h.Workdir)
	assertGone(t, w, bomb.ID, bb.Workdir)
	assertGone(t, w, spin.ID, sp.Workdir)
	if n := len(procs.Marked("THINROOT_BUILD_ID=" + bomb.ID)); n != 0 {
		t.Fatalf("%d processes of the fork bomb are left", n)
	}
}

// A caller other than root may lower the host's limits, not raise them.
func TestLimitsOnlyRootRaises(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	w0 := newWorld(t, 1)
	w := &world{f: w0.f, info: w0.info, cg: w0.cg, limits: builder.Limits{MemoryMax: 1 << 30, PidsMax: 100}}
	w.start(t, 1)
	_, err := w.b.Submit(builder.Request{Config: w.f.Root, Command: []string{"true"}, Limits: builder.Limits{MemoryMax: 2 << 30}}, 1234)
	if err == nil || !strings.Contains(err.Error(), "memory_max 2.0 GiB is over this host's limit of 1.0 GiB") {
		t.Fatalf("raise by a user: %v", err)
	}
	b, err := w.b.Submit(builder.Request{Config: w.f.Root, Command: []string{"true"}, Limits: builder.Limits{MemoryMax: 2 << 30}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Limits.MemoryMax != 2<<30 || b.Limits.PidsMax != 100 {
		t.Fatalf("root's limits: %+v", b.Limits)
	}
	w.b.Cancel(b.ID, 0)
	w.b.WaitFor(context.Background(), b.ID)
}

// A daemon killed mid-build leaves its builds' cgroups; the next one
// removes those of builds that are over, and leaves another live
// daemon's.
func TestLeftCgroupsRemovedAtStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	w0 := newWorld(t, 1)
	for _, name := range []string{"build-gone1", "build-gone2", "other"} {
		if _, err := w0.cg.New(name, builder.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{f: w0.f, info: w0.info, cg: w0.cg}
	w.start(t, 1)
	left := w.cg.Groups()
	if len(left) != 1 || left[0] != "other" {
		t.Fatalf("groups after start: %v, want only other", left)
	}
	g, err := w.cg.Load("other")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(testguard.Context(t)); err != nil {
		t.Fatal(err)
	}
}

// A bootstrap killed at the build's memory limit fails the build for that
// reason, not as thinroot's own error.
func TestLimitsBootstrapOutOfMemory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	w := newWorld(t, 1)
	w.f.Config.Bootstrap = []string{"/bin/sh", "-c", `awk 'BEGIN { s = "0123456789abcdef"; while (length(s) < 512 * 1024 * 1024) s = s s }'`}
	if err := w.f.M.AddConfig(w.f.Config); err != nil {
		t.Fatal(err)
	}
	b := w.submit(t, builder.Request{Command: []string{"/bin/true"}, Limits: builder.Limits{MemoryMax: 64 << 20}})
	fin := w.wait(t, b.ID)
	if fin.State != builder.StateFailed || !strings.HasPrefix(fin.Error, "out of memory (limit 64 MiB, peak ") || !fin.Bootstrapped {
		t.Fatalf("a bootstrap over the memory limit: %s: %s (bootstrapped %v, usage %+v)\n%s", fin.State, fin.Error, fin.Bootstrapped, fin.Usage, readLog(t, w, b.ID))
	}
	t.Logf("bootstrap out of memory: %s", fin.Error)
	if left := w.cg.Groups(); len(left) != 0 {
		t.Fatalf("cgroups left: %v", left)
	}
}
