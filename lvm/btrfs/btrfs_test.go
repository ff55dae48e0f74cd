package btrfs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/btrfs"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

var env = lvmtest.Btrfs()

var bg = context.Background()

func TestMain(m *testing.M) {
	lvmtest.HelperMain([]lvmtest.Env{env}, nil)
	os.Exit(testguard.Main(m))
}

// TestManager runs the contract suite on btrfs pool images: subvolumes,
// read-only snapshots, bind mounts.
func TestManager(t *testing.T) { lvmtest.Run(t, env) }

// mkfsMounted makes a filesystem of the given type in an image and mounts it.
func mkfsMounted(t *testing.T, fstype string, mkfs ...string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, fstype+".img")
	f, _ := os.Create(img)
	f.Truncate(512 << 20)
	f.Close()
	if out, err := exec.Command(mkfs[0], append(mkfs[1:], img)...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", mkfs, err, out)
	}
	dev, err := loop.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := mount.Device(dev.Path, mnt, fstype, ""); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	t.Cleanup(func() { mount.Unmount(mnt, true) })
	return mnt
}

// An existing directory on btrfs is adopted as a pool; one elsewhere is
// refused, saying why. Snapshots are read-only subvolumes, workdirs
// writable ones, and both see the origin's files.
func TestDirectoryPoolAndSubvolumes(t *testing.T) {
	lvmtest.RequireRoot(t)
	be := btrfs.New(t.TempDir(), lvmtest.TestLogger(t))
	ext4 := mkfsMounted(t, "ext4", "mkfs.ext4", "-q")
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "onext4", Directory: ext4}); err == nil || !strings.Contains(err.Error(), "not on btrfs") {
		t.Fatalf("ext4 directory: %v, want a clear refusal", err)
	}
	dir := mkfsMounted(t, "btrfs", "mkfs.btrfs", "-q", "-f")
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Directory: dir}); err != nil {
		t.Fatal(err)
	}
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Directory: dir}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	base, err := be.Create(bg, "p", "mock.r.base", 0)
	if err != nil {
		t.Fatal(err)
	}
	if real, _ := filepath.EvalSymlinks(base.Mount.Source); base.Mount.Type != backend.Bind || !strings.HasPrefix(real, dir) {
		t.Fatalf("base mounts as %+v, want a bind of a directory in the pool", base.Mount)
	}
	os.WriteFile(filepath.Join(base.Mount.Source, "f"), []byte("one"), 0o644)
	snap, err := be.Snapshot(bg, "p", "mock.r.base", "mock.r.snap", backend.SnapshotOptions{Tags: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Origin != "mock.r.base" || len(snap.Tags) != 1 {
		t.Fatalf("snapshot sidecar did not round-trip: %+v", snap)
	}
	if err := os.WriteFile(filepath.Join(snap.Mount.Source, "g"), nil, 0o644); err == nil {
		t.Fatal("a snapshot is writable")
	}
	w, err := be.Snapshot(bg, "p", "mock.r.snap", "+mock.r.w", backend.SnapshotOptions{Activate: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(w.Mount.Source, "f")); err != nil || string(b) != "one" {
		t.Fatalf("the workdir reads %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(w.Mount.Source, "g"), nil, 0o644); err != nil {
		t.Fatalf("a workdir is not writable: %v", err)
	}
	r, err := be.Scan(bg, "p")
	if err != nil || len(r.Volumes) != 3 || r.SizeBytes == 0 {
		t.Fatalf("scan: %+v, %v", r, err)
	}
	if err := be.RemovePool(bg, "p"); !errors.Is(err, backend.ErrNotEmpty) {
		t.Fatalf("remove non-empty pool: %v", err)
	}
	for _, n := range []string{"+mock.r.w", "mock.r.snap", "mock.r.base"} {
		if err := be.Remove(bg, "p", n); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Remove(bg, "p", "mock.r.base"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("second remove: %v, want ErrNotFound", err)
	}
	if err := be.RemovePool(bg, "p"); err != nil {
		t.Fatal(err)
	}
}

// With quotas on, a volume's usage is what its qgroup refers to; without,
// nothing is claimed.
func TestUsageFromQgroups(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := btrfs.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "q", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	defer be.RemovePool(bg, "q")
	v, err := be.Create(bg, "q", "mock.r.v", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Remove(bg, "q", "mock.r.v")
	if err := os.WriteFile(filepath.Join(v.Mount.Source, "data"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := filepath.Join(state, "btrfs", "q")
	exec.Command("sync", "-f", pool).Run()
	r, _ := be.Scan(bg, "q")
	if u := r.Find("mock.r.v").UsedBytes; u != 0 {
		t.Fatalf("without quotas a volume claims %d bytes", u)
	}
	if out, err := exec.Command("btrfs", "quota", "enable", pool).CombinedOutput(); err != nil {
		t.Fatalf("btrfs quota enable: %v %s", err, out)
	}
	exec.Command("btrfs", "quota", "rescan", "-w", pool).Run()
	r, _ = be.Scan(bg, "q")
	if u := r.Find("mock.r.v").UsedBytes; u < 8<<20 {
		t.Fatalf("with quotas a volume of 8 MiB refers to %d bytes", u)
	}
}

// A temporary its writer left (a kill between the ioctl and the rename)
// is never listed and is swept, with its lock and sidecar leftovers; one
// whose writer still holds it stays.
func TestSweepsLeftovers(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := btrfs.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	defer be.RemovePool(bg, "p")
	vols := filepath.Join(state, "btrfs", "p", "volumes")
	for _, n := range []string{".tmp-mock.r.dead", ".tmp-mock.r.live"} {
		if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(vols, n)).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	os.WriteFile(filepath.Join(vols, ".tmp-mock.r.dead.lock"), nil, 0o644)
	live, err := lock.TryLock(filepath.Join(vols, ".tmp-mock.r.live.lock"), true)
	if err != nil || live == nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(vols, "mock.r.orphan.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(vols, ".mock.r.dead.json.tmp-1"), []byte("{"), 0o644)
	r, err := be.Scan(bg, "p")
	if err != nil || len(r.Volumes) != 0 {
		t.Fatalf("leftovers listed: %+v, %v", r, err)
	}
	if err := be.Sweep(bg, "p"); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{".tmp-mock.r.dead", ".tmp-mock.r.dead.lock", "mock.r.orphan.json", ".mock.r.dead.json.tmp-1"} {
		if _, err := os.Lstat(filepath.Join(vols, gone)); err == nil {
			t.Errorf("%s was not swept", gone)
		}
	}
	if _, err := os.Lstat(filepath.Join(vols, ".tmp-mock.r.live")); err != nil {
		t.Errorf("a temporary held by a live writer was swept")
	}
	live.Release()
	if err := be.Sweep(bg, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(vols, ".tmp-mock.r.live")); err == nil {
		t.Errorf("a temporary whose writer let go was not swept")
	}
}

// An image pool survives its mount going away (a reboot): the next scan
// mounts it again and finds the volumes.
func TestImagePoolRemount(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := btrfs.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Create(bg, "p", "mock.r.v", 0); err != nil {
		t.Fatal(err)
	}
	if err := mount.Unmount(filepath.Join(state, "btrfs", "p"), false); err != nil {
		t.Fatal(err)
	}
	r, err := btrfs.New(state, lvmtest.TestLogger(t)).Scan(bg, "p")
	if err != nil || len(r.Volumes) != 1 || r.Volumes[0].Name != "mock.r.v" {
		t.Fatalf("after remount: %+v, %v", r, err)
	}
	be.Remove(bg, "p", "mock.r.v")
	if err := be.RemovePool(bg, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "btrfs", "p.img")); err == nil {
		t.Fatal("pool image left behind")
	}
}
