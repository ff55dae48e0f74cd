package builder

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/thinroot/thinroot/lvm"
)

// Builds of one unique-ext in quick succession each find an empty result
// directory, and every earlier result is kept. Before, the second build
// within a second failed: the name it moved the old results to was taken.
func TestPrepareResultsKeepsEveryEarlierResult(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "result")
	for i := range 4 {
		if err := prepareResults(dir, os.Getuid(), os.Getgid()); err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("build %d: the result directory is not empty: %v", i, ents)
		}
		if err := os.WriteFile(filepath.Join(dir, "out"), []byte{byte('0' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kept, _ := filepath.Glob(dir + ".old-*")
	seen := map[string]bool{}
	for _, k := range kept {
		b, err := os.ReadFile(filepath.Join(k, "out"))
		if err != nil {
			t.Fatal(err)
		}
		seen[string(b)] = true
	}
	if len(seen) != 3 || !seen["0"] || !seen["1"] || !seen["2"] {
		t.Fatalf("earlier results kept: %v (dirs %v), want 0, 1 and 2", seen, kept)
	}
}

// A build record's temporary, left by a daemon killed while it wrote the
// record, is swept at the next start; one of a build that a live daemon
// owns is left alone.
func TestNewSweepsRecordTemporaries(t *testing.T) {
	state := t.TempDir()
	for _, id := range []string{"dead", "live"} {
		dir := filepath.Join(state, "builds", id)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "build.json"), []byte(`{"id":"`+id+`","state":"succeeded"}`), 0o644)
		os.WriteFile(filepath.Join(dir, ".build.json.tmp-1"), []byte("{"), 0o644)
	}
	owner, err := lvm.TryLock(filepath.Join(state, "builds", "live", "lock"), true)
	if err != nil || owner == nil {
		t.Fatal(err)
	}
	defer owner.Release()
	if _, err := New(context.Background(), Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "builds", "dead", ".build.json.tmp-1")); err == nil {
		t.Error("an abandoned record temporary was not swept")
	}
	if _, err := os.Stat(filepath.Join(state, "builds", "live", ".build.json.tmp-1")); err != nil {
		t.Errorf("the temporary of a build a live daemon owns was swept: %v", err)
	}
}
