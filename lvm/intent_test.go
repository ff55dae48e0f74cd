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
