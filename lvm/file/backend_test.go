package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

var bg = context.Background()

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

// A directory on a filesystem without reflink is refused, saying why and
// what to do; one on XFS with reflink or btrfs is adopted.
func TestDirectoryPools(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := file.New(state, lvmtest.TestLogger(t))
	ext4 := mkfsMounted(t, "ext4", "mkfs.ext4", "-q")
	err := be.CreatePool(bg, backend.PoolSpec{Name: "onext4", Directory: ext4})
	if err == nil || !strings.Contains(err.Error(), "ext4") || !strings.Contains(err.Error(), "cannot clone") {
		t.Fatalf("ext4 directory: %v, want a clear refusal", err)
	}
	if pools, _ := be.Pools(bg); len(pools) != 0 {
		t.Fatalf("a refused pool is listed: %v", pools)
	}
	for _, c := range []struct{ fs, mkfs string }{{"xfs", "mkfs.xfs"}, {"btrfs", "mkfs.btrfs"}} {
		if _, err := exec.LookPath(c.mkfs); err != nil {
			t.Fatalf("%s missing (.ci/run installs it): %v", c.mkfs, err)
		}
		args := []string{c.mkfs, "-q", "-f"}
		dir := mkfsMounted(t, c.fs, args...)
		name := "on" + c.fs
		if err := be.CreatePool(bg, backend.PoolSpec{Name: name, Directory: dir}); err != nil {
			t.Fatalf("%s directory: %v", c.fs, err)
		}
		if err := be.CreatePool(bg, backend.PoolSpec{Name: name, Directory: dir}); !errors.Is(err, backend.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		v, err := be.Create(bg, name, "mock.r.base", 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		be.Release(v)
		s, err := be.Snapshot(bg, name, "mock.r.base", "mock.r.snap", backend.SnapshotOptions{Tags: []string{"t1"}})
		if err != nil {
			t.Fatal(err)
		}
		if s.Origin != "mock.r.base" || s.VirtualSize != 64<<20 || len(s.Tags) != 1 {
			t.Fatalf("snapshot sidecar did not round-trip: %+v", s)
		}
		r, err := be.Scan(bg, name)
		if err != nil || len(r.Volumes) != 2 || r.SizeBytes == 0 {
			t.Fatalf("scan: %+v, %v", r, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "volumes", "mock.r.snap.img")); err != nil {
			t.Fatalf("volumes are not in the adopted directory: %v", err)
		}
		if err := be.RemovePool(bg, name); !errors.Is(err, backend.ErrNotEmpty) {
			t.Fatalf("remove non-empty pool: %v", err)
		}
		be.Remove(bg, name, "mock.r.snap")
		be.Remove(bg, name, "mock.r.base")
		if err := be.RemovePool(bg, name); err != nil {
			t.Fatal(err)
		}
	}
}

// Leftovers of a crash inside the backend (a temporary image nobody
// holds, a sidecar whose image never got published) are never listed and
// are swept (when the Manager opens the pool or finishes the dead
// operation); a temporary still held by a live writer is left alone.
func TestSweepsLeftovers(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := file.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	defer be.RemovePool(bg, "p")
	vols := filepath.Join(state, "pools", "p", "volumes")
	os.WriteFile(filepath.Join(vols, ".tmp-mock.r.dead.img"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(vols, "mock.r.orphan.json"), []byte("{}"), 0o644)
	live := filepath.Join(vols, ".tmp-mock.r.live.img")
	os.WriteFile(live, []byte("x"), 0o600)
	h, err := lock.TryLock(live, true)
	if err != nil || h == nil {
		t.Fatal(err)
	}
	// A sidecar's own temporary (a kill inside its atomic write), and one
	// whose volume's writer is still at work.
	os.WriteFile(filepath.Join(vols, ".mock.r.dead.json.tmp-123"), []byte("{"), 0o644)
	liveSidecar := filepath.Join(vols, ".mock.r.live.json.tmp-456")
	os.WriteFile(liveSidecar, []byte("{"), 0o644)
	r, err := be.Scan(bg, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Volumes) != 0 {
		t.Fatalf("leftovers listed as volumes: %+v", r.Volumes)
	}
	if err := be.Sweep(bg, "p"); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{".tmp-mock.r.dead.img", "mock.r.orphan.json", ".mock.r.dead.json.tmp-123"} {
		if _, err := os.Stat(filepath.Join(vols, gone)); err == nil {
			t.Errorf("%s was not swept", gone)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a temporary held by a live writer was swept")
	}
	if _, err := os.Stat(liveSidecar); err != nil {
		t.Errorf("the sidecar temporary of a live writer was swept")
	}
	os.Remove(liveSidecar)
	h.Release()
	os.Remove(live)
}

// An image pool survives its mount going away (a reboot): the next scan
// mounts it again and finds the volumes.
func TestImagePoolRemount(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := file.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	v, err := be.Create(bg, "p", "mock.r.v", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	be.Release(v)
	if err := mount.Unmount(filepath.Join(state, "pools", "p"), false); err != nil {
		t.Fatal(err)
	}
	r, err := file.New(state, lvmtest.TestLogger(t)).Scan(bg, "p")
	if err != nil || len(r.Volumes) != 1 || r.Volumes[0].Name != "mock.r.v" {
		t.Fatalf("after remount: %+v, %v", r, err)
	}
	be.Remove(bg, "p", "mock.r.v")
	if err := be.RemovePool(bg, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "pools", "p.img")); err == nil {
		t.Fatal("pool image left behind")
	}
}

// An image pool unmounted here while another mount namespace still holds
// a copy of its mount (a build's sandbox, anything that unshared) mounts
// again through the loop device that copy keeps: a second device over the
// same image would be a second XFS instance on the same blocks, which XFS
// refuses (duplicate UUID) and which would corrupt it if it did not.
func TestImagePoolRemountBesideAnotherNamespace(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := file.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(state, "pools", "p")
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "300")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare (util-linux): %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	testguard.WaitFor(t, 10*time.Second, "the other namespace to copy the mounts", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", holder.Process.Pid))
		return strings.HasPrefix(string(b), "sleep")
	})
	if err := mount.Unmount(dir, false); err != nil {
		t.Fatal(err)
	}
	r, err := file.New(state, lvmtest.TestLogger(t)).Scan(bg, "p")
	if err != nil {
		t.Fatalf("scan after the unmount, beside the copy: %v", err)
	}
	if len(r.Volumes) != 0 {
		t.Fatalf("volumes %+v, want none", r.Volumes)
	}
	devs := 0
	for file := range loop.Attached() {
		if file == filepath.Join(state, "pools", "p.img") {
			devs++
		}
	}
	if devs != 1 {
		t.Fatalf("the image is attached to %d loop devices, want 1", devs)
	}
	holder.Process.Kill()
	holder.Wait()
	if err := be.RemovePool(bg, "p"); err != nil {
		t.Fatal(err)
	}
}

func TestScanMissingPool(t *testing.T) {
	be := file.New(t.TempDir(), nil)
	if _, err := be.Scan(bg, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("scan of a missing pool: %v", err)
	}
}

// Scans running beside creations (the tree refreshes every second while
// mkdirs run) never take a half-published volume for a crash's leftover:
// every clone keeps its sidecar and so its recorded origin.
func TestScanDuringCreation(t *testing.T) {
	lvmtest.RequireRoot(t)
	state := t.TempDir()
	be := file.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		vols, _ := be.Scan(bg, "p")
		for _, v := range vols.Volumes {
			be.Remove(bg, "p", v.Name)
		}
		be.RemovePool(bg, "p")
	}()
	v, err := be.Create(bg, "p", "mock.r.base", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	be.Release(v)
	stop := make(chan struct{})
	scans := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				scans <- n
				return
			default:
			}
			// A second backend on the same state, as another process.
			if _, err := file.New(state, nil).Scan(bg, "p"); err == nil {
				n++
			}
		}
	}()
	const clones = 150
	for i := 0; i < clones; i++ {
		if _, err := be.Snapshot(bg, "p", "mock.r.base", fmt.Sprintf("mock.r.c%d", i), backend.SnapshotOptions{}); err != nil {
			close(stop)
			t.Fatal(err)
		}
	}
	close(stop)
	n := <-scans
	r, err := be.Scan(bg, "p")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, v := range r.Volumes {
		if v.Name != "mock.r.base" && v.Origin != "mock.r.base" {
			lost++
		}
	}
	t.Logf("%d clones made beside %d scans", clones, n)
	if lost > 0 || len(r.Volumes) != clones+1 {
		t.Fatalf("%d of %d clones lost their sidecar (volumes: %d)", lost, clones, len(r.Volumes))
	}
}

// A pool whose creator died before writing its record (killed after the
// image got its name, mounted or not yet) was never published: the next
// scan undoes it, reports it missing, and a new create works. Before this
// was handled every later scan of the pool failed, and so did every
// operation on it.
func TestHalfMadePoolIsUndone(t *testing.T) {
	lvmtest.RequireRoot(t)
	for _, mounted := range []bool{true, false} {
		state := t.TempDir()
		be := file.New(state, lvmtest.TestLogger(t))
		if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(state, "pools", "p")
		// What a kill between the image's rename and the record leaves.
		if err := os.Remove(filepath.Join(root, "thinroot-pool.json")); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(root, "volumes"))
		if !mounted {
			if err := mount.Unmount(root, false); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := be.Scan(bg, "p"); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("mounted %v: scan of a half-made pool: %v, want ErrNotFound", mounted, err)
		}
		if ok, _ := mount.IsMountpoint(root); ok {
			t.Fatalf("mounted %v: the half-made pool is still mounted", mounted)
		}
		if pools, _ := be.Pools(bg); len(pools) != 0 {
			t.Fatalf("mounted %v: the half-made pool is still listed: %v", mounted, pools)
		}
		if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
			t.Fatalf("mounted %v: create after an interrupted create: %v", mounted, err)
		}
		if err := be.RemovePool(bg, "p"); err != nil {
			t.Fatal(err)
		}
	}
	// A pool that holds volumes is never undone, even without its record.
	state := t.TempDir()
	be := file.New(state, lvmtest.TestLogger(t))
	if err := be.CreatePool(bg, backend.PoolSpec{Name: "p", Size: 512 << 20}); err != nil {
		t.Fatal(err)
	}
	v, err := be.Create(bg, "p", "mock.r.v", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	be.Release(v)
	os.Remove(filepath.Join(state, "pools", "p", "thinroot-pool.json"))
	if _, err := be.Scan(bg, "p"); err == nil || errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("scan of a pool with volumes and no record: %v, want an error that is not ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(state, "pools", "p", "volumes", "mock.r.v.img")); err != nil {
		t.Fatalf("the volume of a pool without its record was touched: %v", err)
	}
	mount.Unmount(filepath.Join(state, "pools", "p"), false)
}
