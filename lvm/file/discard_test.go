package file_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// Removing a workdir drops what its ext4 has not yet written, where an
// unmount would first write it all to the volume being removed. What the
// workdir's loop device is asked to write during the removal is counted;
// the test holds the device open so that its counter outlives the
// removal. Another package's sync may write the data out during the
// call, so the removal is tried up to three times for one undisturbed
// run; the control (a plain unmount) shows the count sees the data.
func TestRemoveWorkdirWritesNothingBack(t *testing.T) {
	f := lvmtest.NewFixture(t, env)
	f.Init(0)
	ctx := context.Background()
	var control, removal []int64
	for len(control) < 3 && (len(control) == 0 || control[len(control)-1] < 60) {
		control = append(control, writtenRemoving(t, f, fmt.Sprintf("c%d", len(control)), func(ext, target string) error {
			if err := lvm.HostMounter().Unmount(target, false); err != nil {
				return err
			}
			return f.M.RemoveWorkdir(ctx, f.Root, ext)
		}))
	}
	if control[len(control)-1] < 60 {
		t.Fatalf("an unmount wrote %v MiB of 64 in its tries: the control is broken", control)
	}
	for len(removal) < 3 && (len(removal) == 0 || removal[len(removal)-1] > 8) {
		removal = append(removal, writtenRemoving(t, f, fmt.Sprintf("r%d", len(removal)), func(ext, _ string) error {
			return f.M.RemoveWorkdir(ctx, f.Root, ext)
		}))
	}
	t.Logf("MiB written: unmount then remove %v, remove %v", control, removal)
	if removal[len(removal)-1] > 8 {
		t.Errorf("RemoveWorkdir wrote %v MiB of 64 in its tries (unmount, then remove: %v)", removal, control)
	}
}

// writtenRemoving makes workdir ext with 64 MiB not yet written, removes
// it with remove, and returns the MiB its device was asked to write
// meanwhile.
func writtenRemoving(t *testing.T, f *lvmtest.Fixture, ext string, remove func(ext, target string) error) int64 {
	t.Helper()
	target := f.Workdir(lvm.PostInit, ext)
	table, err := mount.Table()
	if err != nil {
		t.Fatal(err)
	}
	e, ok := mount.Lookup(table, target)
	if !ok || !strings.HasPrefix(e.Source, "/dev/loop") {
		t.Fatalf("workdir %s: not mounted from a loop device (%+v)", ext, e)
	}
	dev, err := os.Open(e.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	b := make([]byte, 64<<20)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(target, "data"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := writtenMiB(t, e.Source)
	if err := remove(ext, target); err != nil {
		t.Fatalf("remove workdir %s: %v", ext, err)
	}
	if f.Mounted(target) {
		t.Fatalf("workdir %s still mounted", ext)
	}
	return writtenMiB(t, e.Source) - before
}

// writtenMiB is what the device has been asked to write so far, in MiB.
func writtenMiB(t *testing.T, dev string) int64 {
	t.Helper()
	n, err := loop.Written(dev)
	if err != nil {
		t.Fatal(err)
	}
	return n >> 20
}
