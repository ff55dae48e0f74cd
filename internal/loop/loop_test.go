package loop

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/mount"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: attaches loop devices")
	}
}

// A device attached with autoclear stays while it is mounted and goes away
// by itself once the mount is gone and our hold is closed.
func TestAttachMountAutoclear(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "vol.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v\n%s", err, out)
	}
	dev, err := Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := Attached()[img]; got != dev.Path {
		t.Fatalf("sysfs says %q is on %q, want %q", img, got, dev.Path)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := mount.Device(dev.Path, mnt, "ext4", "noatime"); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	if err := os.WriteFile(filepath.Join(mnt, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := Attached()[img]; !ok {
		t.Fatal("device detached while still mounted")
	}
	if err := mount.Unmount(mnt, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := Attached()[img]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("loop device still attached 5s after unmount: autoclear did not work")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Closing our hold without mounting detaches at once: a process that dies
// before it mounts leaks nothing.
func TestCloseWithoutMountDetaches(t *testing.T) {
	needRoot(t)
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dev, err := Attach(img, true)
	if err != nil {
		t.Fatal(err)
	}
	dev.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := Attached()[img]; !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("still attached after close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
