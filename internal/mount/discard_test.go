package mount_test

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
)

// fsOnLoop makes an image with filesystem fs and mounts it at a new
// directory through a loop device that stays attached until the test
// ends, so its write counter can be read after the unmount.
func fsOnLoop(t *testing.T, fs string) (img, dir string, dev *loop.Device) {
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
	dir = t.TempDir()
	dev = mountImage(t, img, dir, fs)
	return img, dir, dev
}

// mountImage attaches img and mounts it at dir; the device is closed
// (and so detached once unmounted) when the test ends.
func mountImage(t *testing.T, img, dir, fs string) *loop.Device {
	t.Helper()
	dev, err := loop.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	if err := mount.Device(dev.Path, dir, fs, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dev
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

// writtenMiB is what the device has been asked to write so far, in MiB.
func writtenMiB(t *testing.T, dev *loop.Device) int64 {
	t.Helper()
	n, err := loop.Written(dev.Path)
	if err != nil {
		t.Fatal(err)
	}
	return n >> 20
}

// Discard drops what the filesystem has not written yet, where Unmount
// writes it to the device; on both ext4 and XFS. Only what is written
// during the call counts. Another test's sync may write the data out
// before or during the call, which spoils the control and may be counted
// against Discard, so each side is tried up to three times for one run
// that shows what it does on its own.
func TestDiscardWritesNothingBack(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			var control, discard []int64
			for len(control) < 3 && (len(control) == 0 || control[len(control)-1] < 60) {
				control = append(control, writtenBy(t, fs, func(dir string) error { return mount.Unmount(dir, false) }))
			}
			if control[len(control)-1] < 60 {
				t.Fatalf("Unmount wrote %v MiB of 64 in its tries: the control is broken", control)
			}
			for len(discard) < 3 && (len(discard) == 0 || discard[len(discard)-1] > 8) {
				discard = append(discard, writtenBy(t, fs, mount.Discard))
			}
			if discard[len(discard)-1] > 8 {
				t.Errorf("Discard wrote %v MiB of 64 in its tries (Unmount: %v)", discard, control)
			}
		})
	}
}

// writtenBy makes a filesystem with 64 MiB not yet written, unmounts it
// with unmount, and returns the MiB written to its device meanwhile.
func writtenBy(t *testing.T, fs string, unmount func(dir string) error) int64 {
	t.Helper()
	_, dir, dev := fsOnLoop(t, fs)
	dirty(t, dir, 64)
	before := writtenMiB(t, dev)
	if err := unmount(dir); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mount.IsMountpoint(dir); ok {
		t.Fatal("still mounted")
	}
	return writtenMiB(t, dev) - before
}

// A mount in use is left as it was, working; so is the other mount of a
// device mounted twice, which Discard unmounts as Unmount does: what
// was written through it is on the device afterwards.
func TestDiscardLeavesWhatOthersUse(t *testing.T) {
	img, dir, _ := fsOnLoop(t, "ext4")
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
	if err := mount.Discard(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(other, "after")); err != nil || string(b) != "x" {
		t.Fatalf("the device's other mount: %q %v", b, err)
	}
	if err := mount.Unmount(other, false); err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	mountImage(t, img, again, "ext4")
	b, err := os.ReadFile(filepath.Join(again, "after"))
	fi, derr := os.Stat(filepath.Join(again, "data"))
	if err != nil || string(b) != "x" || derr != nil || fi.Size() != 4<<20 {
		t.Errorf("mounted again, the image lacks what was written: after %q %v, data %v %v", b, err, fi, derr)
	}
	if err := mount.Unmount(again, false); err != nil {
		t.Fatal(err)
	}
}

// A workdir with something mounted inside it (a build's /proc, a bind
// mount a user left) is in use: Discard fails with EBUSY and changes
// nothing, as Unmount would; once the inner mount is gone it goes ahead.
func TestDiscardLeavesAMountWithMountsInside(t *testing.T) {
	_, dir, _ := fsOnLoop(t, "ext4")
	inner := filepath.Join(dir, "proc")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(inner, unix.MNT_DETACH) })
	if err := mount.Discard(dir); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Discard of a mount with a mount inside: %v, want EBUSY", err)
	}
	if ok, _ := mount.IsMountpoint(inner); !ok {
		t.Fatal("the inner mount is gone")
	}
	if err := os.WriteFile(filepath.Join(dir, "after"), []byte("x"), 0o644); err != nil {
		t.Fatalf("the mount no longer works: %v", err)
	}
	if err := mount.Unmount(inner, false); err != nil {
		t.Fatal(err)
	}
	if err := mount.Discard(dir); err != nil {
		t.Fatalf("Discard once the inner mount is gone: %v", err)
	}
	if ok, _ := mount.IsMountpoint(dir); ok {
		t.Fatal("still mounted")
	}
}
