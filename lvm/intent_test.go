package lvm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// An intent whose writer died before putting it in place (killed between
// creating its temporary and renaming it) is swept by the next recovery;
// one whose writer still holds it stays. Before, such files were never
// removed.
func TestRecoverSweepsAbandonedIntentTemporaries(t *testing.T) {
	m, err := NewManager(Options{StateDir: t.TempDir(), Basedir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := m.intentsDir()
	os.MkdirAll(dir, 0o755)
	dead := filepath.Join(dir, ".new-workdir-create-123")
	live := filepath.Join(dir, ".new-workdir-create-456")
	os.WriteFile(dead, []byte(`{"op":"workdir-create"}`), 0o644)
	os.WriteFile(live, nil, 0o644)
	h, err := TryLock(live, true)
	if err != nil || h == nil {
		t.Fatal(err)
	}
	defer h.Release()
	if err := m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); err == nil {
		t.Error("an abandoned intent temporary was not swept")
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a temporary its writer holds was swept: %v", err)
	}
	// A writer whose fresh temporary is swept before it locks it starts
	// over and still records its intent.
	in := &intent{Op: "snapshot", Root: "r", Pool: "p"}
	if err := m.begin(in); err != nil {
		t.Fatal(err)
	}
	defer m.done(in)
	if _, err := os.Stat(in.path); err != nil {
		t.Fatalf("intent not in place: %v", err)
	}
}

// The temporary of a current-snapshot record whose writer was killed in
// the middle of writing it is removed by the next operation on its config,
// and only that config's.
func TestConfigLockSweepsRecordTemporaries(t *testing.T) {
	m, err := NewManager(Options{StateDir: t.TempDir(), Basedir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{Root: "a", Basedir: t.TempDir()}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(c.Basedir, "..snapinfo-mock.a.e1.tmp-123")
	other := filepath.Join(c.Basedir, "..snapinfo-mock.a.b.e1.tmp-456") // config "a.b"
	record := c.SnapinfoPath("e1")
	for _, p := range []string{mine, other, record} {
		os.WriteFile(p, []byte("mock.a.postinit"), 0o644)
	}
	l, err := m.lockConfig(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(mine); err == nil {
		t.Error("the config's abandoned record temporary is still there")
	}
	for _, p := range []string{other, record} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

// Recovery (at start and at every refresh) sweeps them too, for every
// registered config nobody is working on.
func TestRecoverSweepsRecordTemporaries(t *testing.T) {
	m, err := NewManager(Options{StateDir: t.TempDir(), Basedir: t.TempDir(), Backends: map[string]Backend{"file": nil}})
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Root: "a", Basedir: t.TempDir(), Backend: "file"}
	if err := m.AddConfig(c); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.Basedir, "..snapinfo-mock.a.e1.tmp-123")
	os.WriteFile(tmp, nil, 0o644)
	if err := m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("recovery left an abandoned record temporary")
	}
}

// A sweep may lock a writer's fresh temporary before the writer does
// (it looks abandoned for that instant); the writer then starts over
// with a new one instead of failing. Before, the operation failed with
// "lock intent: resource temporarily unavailable": a mkdir through the
// tree answered EIO on a loaded machine.
func TestBeginWhileASweepHoldsItsTemporary(t *testing.T) {
	m, err := NewManager(Options{StateDir: t.TempDir(), Basedir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(m.intentsDir(), 0o755)
	var held []*HeldLock
	beforeIntentLock = func(path string) {
		if len(held) < 3 {
			h, err := TryLock(path, true)
			if err != nil || h == nil {
				t.Fatalf("the sweep could not lock %s: %v", path, err)
			}
			held = append(held, h)
		}
	}
	defer func() { beforeIntentLock = nil }()
	in := &intent{Op: "workdir-create", Root: "r", Pool: "p"}
	if err := m.begin(in); err != nil {
		t.Fatalf("begin while a sweep holds its temporaries: %v", err)
	}
	defer m.done(in)
	if len(held) != 3 {
		t.Fatalf("the writer tried %d temporaries, want 4", len(held)+1)
	}
	for _, h := range held {
		os.Remove(h.Path())
		h.Release()
	}
	if _, err := os.Stat(in.path); err != nil {
		t.Fatalf("intent not in place: %v", err)
	}
}

// kindOnly stands in for a backend where only the Manager's bookkeeping
// is under test: nothing but Kind is ever called.
type kindOnly struct{ Backend }

func (kindOnly) Kind() string { return "file" }

// A State published while an operation's intent is on disk hides the
// volume it makes; once the operation is done the next State shows it.
// Before, that State stayed until something else changed: a mkdir through
// the tree followed at once by an rmdir got ENOENT, and a listing right
// after 16 mkdirs missed one.
func TestStateShowsVolumeOnceIntentIsDone(t *testing.T) {
	m, err := NewManager(Options{StateDir: t.TempDir(), Basedir: t.TempDir(),
		Backends: map[string]Backend{"file": kindOnly{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddConfig(Config{Root: "r", Pool: "p", Basedir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	snap := Volume{Name: SnapshotLV("r", PostInit), Pool: "p", Thin: true}
	m.pools["p"].report = &PoolReport{Name: "p", Volumes: []Volume{snap}}
	lv := WorkdirLV("r", "w")
	in := &intent{Op: "workdir-create", Root: "r", Pool: "p", Volumes: []string{lv}}
	if err := m.begin(in); err != nil {
		t.Fatal(err)
	}
	m.patch("p", &Volume{Name: lv, Pool: "p", Thin: true, Origin: snap.Name})
	if _, cs := m.State().Config("r"); cs.Workdir("w") != nil {
		t.Fatal("a volume whose operation is still running is shown")
	}
	m.done(in)
	if _, cs := m.State().Config("r"); cs.Workdir("w") == nil {
		t.Fatal("the volume is still hidden after its operation is done")
	}
}
