package lvm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/thinroot/thinroot/internal/lock"
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
	h, err := lock.TryLock(live, true)
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
