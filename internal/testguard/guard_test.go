package testguard_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/testguard"
)

func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }

// Sweep finds, reports and clears a mount and a loop device left under a
// directory, and nothing outside it.
func TestSweepFindsAndClearsLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts and attaches loop devices")
	}
	dir := t.TempDir()
	if !strings.HasPrefix(dir, testguard.Scope()+"/") {
		t.Fatalf("t.TempDir %s is not under the package's scope %s", dir, testguard.Scope())
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := loop.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if got := testguard.Sweep(t.TempDir()); len(got) != 0 {
		t.Fatalf("a sweep of an empty directory found %q", got)
	}
	got := strings.Join(testguard.Sweep(dir), "\n")
	if !strings.Contains(got, "mount "+mnt) || !strings.Contains(got, "loop device "+dev.Path) {
		t.Fatalf("the sweep reported:\n%s\nwant the tmpfs on %s and %s", got, mnt, dev.Path)
	}
	if len(testguard.Mounted(dir)) != 0 {
		t.Fatalf("still mounted after the sweep: %v", testguard.Mounted(dir))
	}
	// The device goes once its last holder (this test's descriptor)
	// closes it.
	dev.Close()
	if again := testguard.Sweep(dir); len(again) != 0 {
		t.Fatalf("a second sweep still found %q", again)
	}
}

// Every package with tests runs them through Main, so that each checks
// what it left behind and none can wedge the run.
func TestEveryPackageIsGuarded(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; root = filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		if root == "/" {
			t.Fatal("no go.mod above the test's directory")
		}
	}
	tested := map[string]bool{}
	guarded := map[string]bool{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || d.Name() == "_out") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		dir := filepath.Dir(p)
		tested[dir] = true
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "testguard.Main(m)") {
			guarded[dir] = true
		}
		return nil
	})
	for dir := range tested {
		if !guarded[dir] {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("%s has tests but no TestMain calling testguard.Main(m)", rel)
		}
	}
	if len(tested) < 10 {
		t.Fatalf("found only %d test packages under %s", len(tested), root)
	}
}
