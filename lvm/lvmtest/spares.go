package lvmtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
)

// spareVolumes lists the spare volumes in the fixture's pool, straight
// from the backend.
func spareVolumes(t *testing.T, f *Fixture) []backend.Volume {
	t.Helper()
	r, err := f.Env.Backend(t, f.StateDir).Scan(context.Background(), f.Pool)
	if errors.Is(err, lvm.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []backend.Volume
	for _, v := range r.Volumes {
		if lvm.IsSpare(v.Name) {
			out = append(out, v)
		}
	}
	return out
}

// Warm spares: made ahead, invisible, handed over on the next workdir of
// their snapshot (mounted where mock looks, entered, written), refilled,
// removed with their snapshot, by scrub, when the keeper stops, and by
// the next Manager when a keeper dies with them.
func testSpares(t *testing.T, env Env) {
	requireReal(t, env)
	ctx := context.Background()
	f := NewFixture(t, env)
	if _, ok := f.Env.Backend(t, f.StateDir).(backend.Renamer); !ok {
		t.Skipf("the %s backend cannot rename volumes, which spares need", env.Name)
	}
	f.Init(0)
	spares := filepath.Join(f.StateDir, "spares")
	if err := f.M.StartSpares(ctx, lvm.SpareOptions{Count: 1}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			f.M.StopSpares(ctx)
		}
	}
	t.Cleanup(stop)

	// One keeper at a time.
	other := f.NewManager()
	if err := other.StartSpares(ctx, lvm.SpareOptions{Count: 1}); !errors.Is(err, lvm.ErrBusy) {
		other.StopSpares(ctx)
		t.Fatalf("a second keeper of spares: %v, want ErrBusy", err)
	}

	before := f.ConfigState(f.M, f.Root)
	thin0 := f.M.State().Pool(f.Pool).Stats.ThinVolumes
	if err := f.M.MakeSpare(ctx, f.Root, lvm.PostInit); err != nil {
		t.Fatal(err)
	}
	if got := spareVolumes(t, f); len(got) != 1 || got[0].Origin == "" {
		t.Fatalf("spare volumes after MakeSpare: %+v", got)
	}
	cs := f.ConfigState(f.M, f.Root)
	if len(cs.Workdirs) != len(before.Workdirs) || len(cs.Snapshots) != len(before.Snapshots) {
		t.Errorf("a spare shows in the State: %+v", cs)
	}
	if n := f.M.State().Pool(f.Pool).Stats.ThinVolumes; n != thin0 {
		t.Errorf("thin volumes counted %d with a spare, %d without", n, thin0)
	}
	if n := f.M.State().Pool(f.Pool).Stats.Spares; n != 1 {
		t.Errorf("the pool's stats count %d spares, want 1", n)
	}
	if m := f.MountsUnder(f.Basedir); len(m) != 0 {
		t.Errorf("a spare is mounted in mock's paths: %v", m)
	}
	if m := f.MountsUnder(spares); len(m) != 1 {
		t.Errorf("mounts in the spares directory: %v, want the spare's", m)
	}

	// Hand-over.
	w, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "a")
	if err != nil {
		t.Fatal(err)
	}
	if f.M.SparesTaken() != 1 {
		t.Fatal("the workdir was cloned although a spare was ready")
	}
	if !f.Mounted(w.Mountpoint) {
		t.Fatalf("handed-over workdir not mounted at %s", w.Mountpoint)
	}
	issue, err := os.ReadFile(filepath.Join(w.Mountpoint, "etc", "issue"))
	if err != nil || !strings.Contains(string(issue), "busybox") {
		t.Fatalf("handed-over workdir: /etc/issue %q, %v", issue, err)
	}
	if err := os.WriteFile(filepath.Join(w.Mountpoint, "tmp", "probe"), []byte("x"), 0o644); err != nil {
		t.Fatalf("handed-over workdir cannot be written: %v", err)
	}
	if cur, _ := f.M.Current(f.Root, "a"); cur != lvm.PostInit {
		t.Errorf("current snapshot of the handed-over workdir %q, want postinit", cur)
	}
	ws := f.ConfigState(f.M, f.Root).Workdir("a")
	if ws == nil || ws.Snapshot != lvm.PostInit || !ws.Mounted {
		t.Fatalf("handed-over workdir in the State: %+v", ws)
	}
	// A restarted Manager sees the same workdir (the records are on disk).
	if ws := f.ConfigState(f.NewManager(), f.Root).Workdir("a"); ws == nil || ws.Snapshot != lvm.PostInit {
		t.Fatalf("handed-over workdir after a rescan: %+v", ws)
	}

	// The refill makes another.
	WaitFor(t, 5*time.Second, "the refill", func() bool { return f.M.Spares()[f.Root+"/"+lvm.PostInit] == 1 })

	// What a removed workdir read warms the next spare of its snapshot
	// (block volumes on loop devices).
	if env.Name == "file" {
		w2, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "b")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(filepath.Join(w2.Mountpoint, "etc", "issue")); err != nil {
			t.Fatal(err)
		}
		if err := f.M.RemoveWorkdir(ctx, f.Root, "b"); err != nil {
			t.Fatal(err)
		}
		warmed := f.M.SparesWarmed()
		if err := f.M.MakeSpare(ctx, f.Root, lvm.PostInit); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, 5*time.Second, "a warmed spare", func() bool { return f.M.SparesWarmed() > warmed })
	}

	// A snapshot's spares go with it.
	if err := f.M.Snapshot(ctx, f.Root, "a", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.MakeSpare(ctx, f.Root, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.RemoveWorkdir(ctx, f.Root, "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.RemoveSnapshot(ctx, f.Root, "s1"); err != nil {
		t.Fatal(err)
	}
	for _, v := range spareVolumes(t, f) {
		if strings.HasSuffix(v.Origin, ".s1") {
			t.Errorf("spare %s of the removed snapshot s1 is left", v.Name)
		}
	}
	if f.M.Spares()[f.Root+"/s1"] != 0 {
		t.Error("the keeper still lists a spare of the removed snapshot")
	}

	// Scrub removes them all.
	if err := f.M.Scrub(ctx, f.Root); err != nil {
		t.Fatal(err)
	}
	if got := spareVolumes(t, f); len(got) != 0 {
		t.Errorf("spares left after scrub: %+v", got)
	}
	if m := f.MountsUnder(spares); len(m) != 0 {
		t.Errorf("mounts left in the spares directory after scrub: %v", m)
	}

	// Stopping removes every spare and the private directory's mount.
	f.Init(0)
	if err := f.M.MakeSpare(ctx, f.Root, lvm.PostInit); err != nil {
		t.Fatal(err)
	}
	stop()
	if got := spareVolumes(t, f); len(got) != 0 {
		t.Errorf("spares left after StopSpares: %+v", got)
	}
	if f.Mounted(spares) || len(f.MountsUnder(spares)) != 0 {
		t.Error("the spares directory is still mounted after StopSpares")
	}
}

// A keeper that dies leaves spares and its private directory mounted; the
// next Manager's Refresh removes them (they are nobody's).
func testDeadKeeper(t *testing.T, env Env) {
	requireReal(t, env)
	f := NewFixture(t, env)
	if _, ok := f.Env.Backend(t, f.StateDir).(backend.Renamer); !ok {
		t.Skipf("the %s backend cannot rename volumes, which spares need", env.Name)
	}
	f.Init(0)
	// A helper that makes a spare and dies without stopping: exit
	// without StopSpares is what a SIGKILL leaves, minus the intent.
	cmd := f.helperCmd(Job{Op: "spare-leave", Snap: lvm.PostInit}, "")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if len(spareVolumes(t, f)) != 1 {
		t.Fatal("the dead keeper left no spare to sweep")
	}
	m := f.NewManager()
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := spareVolumes(t, f); len(got) != 0 {
		t.Errorf("spares of a dead keeper left after a Refresh: %+v", got)
	}
	spares := filepath.Join(f.StateDir, "spares")
	if f.Mounted(spares) || len(f.MountsUnder(spares)) != 0 {
		t.Error("the dead keeper's spares directory is still mounted")
	}
}
