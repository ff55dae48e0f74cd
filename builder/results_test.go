package builder

import (
	"os"
	"path/filepath"
	"testing"
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
