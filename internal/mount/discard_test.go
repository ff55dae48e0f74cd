package mount_test

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
)

// fsOnLoop makes an image with filesystem fs, mounts it at a new
// directory through an autoclear loop device, and returns the image and
// the mount.
func fsOnLoop(t *testing.T, fs string) (img, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mounts (CI runs as root)")
	}
	img = filepath.Join(t.TempDir(), "img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	if out, err := exec.Command("mkfs."+fs, "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.%s: %v %s", fs, err, out)
	}
	dev, err := loop.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dir = t.TempDir()
	if err := mount.Device(dev.Path, dir, fs, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return img, dir
}

// dirty writes n MiB that nothing has synced yet.
func dirty(t *testing.T, dir string, n int) {
	t.Helper()
	b := make([]byte, n<<20)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, "data"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// allocated is the image's allocated size in MiB.
func allocated(t *testing.T, img string) int64 {
	t.Helper()
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512 >> 20
}

// Discard drops what the filesystem has not written yet, where Unmount
// writes it to the volume; on both ext4 and XFS.
func TestDiscardWritesNothingBack(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			img, dir := fsOnLoop(t, fs)
			before := allocated(t, img)
			dirty(t, dir, 64)
			if err := mount.Unmount(dir, false); err != nil {
				t.Fatal(err)
			}
			if grew := allocated(t, img) - before; grew < 60 {
				t.Fatalf("Unmount wrote %d MiB of 64 into the image: the control is broken", grew)
			}

			img, dir = fsOnLoop(t, fs)
			before = allocated(t, img)
			dirty(t, dir, 64)
			if err := mount.Discard(dir); err != nil {
				t.Fatal(err)
			}
			if ok, _ := mount.IsMountpoint(dir); ok {
				t.Fatal("still mounted")
			}
			if grew := allocated(t, img) - before; grew > 16 {
				t.Errorf("Discard wrote %d MiB of 64 into the image", grew)
			}
		})
	}
}

// A mount in use is left as it was, working; so is the other mount of a
// device mounted twice, which Discard unmounts as Unmount does.
func TestDiscardLeavesWhatOthersUse(t *testing.T) {
	img, dir := fsOnLoop(t, "ext4")
	dirty(t, dir, 4)
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.Discard(dir); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Discard of a mount in use: %v, want EBUSY", err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "after"), []byte("x"), 0o644); err != nil {
		t.Fatalf("the busy mount no longer works: %v", err)
	}

	other := t.TempDir()
	if err := mount.Bind(dir, other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(other, unix.MNT_DETACH) })
	before := allocated(t, img)
	if err := mount.Discard(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(other, "after")); err != nil || string(b) != "x" {
		t.Fatalf("the device's other mount: %q %v", b, err)
	}
	if err := mount.Unmount(other, false); err != nil {
		t.Fatal(err)
	}
	if grew := allocated(t, img) - before; grew < 3 {
		t.Errorf("the data of a device mounted twice was not written back: %d MiB", grew)
	}
}
