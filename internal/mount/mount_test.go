package mount

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseLine(t *testing.T) {
	e, ok := parseLine(`36 35 7:3 / /var/lib/mock/a\040b/root rw,noatime shared:1 - ext4 /dev/loop3 rw,discard`)
	if !ok {
		t.Fatal("not parsed")
	}
	if e.Mountpoint != "/var/lib/mock/a b/root" || e.FSType != "ext4" || e.Source != "/dev/loop3" || e.Major != 7 || e.Minor != 3 {
		t.Fatalf("%+v", e)
	}
	if _, ok := parseLine("garbage"); ok {
		t.Fatal("garbage parsed")
	}
}

func TestParseOptions(t *testing.T) {
	flags, data := ParseOptions("noatime,discard,ro,nosuid,commit=60,defaults")
	if flags != unix.MS_NOATIME|unix.MS_RDONLY|unix.MS_NOSUID || data != "discard,commit=60" {
		t.Fatalf("flags %#x data %q", flags, data)
	}
	flags, data = ParseOptions("ro,rw")
	if flags != 0 || data != "" {
		t.Fatalf("rw after ro: flags %#x data %q", flags, data)
	}
}

func TestDetectFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mkfs tools live in /sbin (CI runs as root)")
	}
	for _, c := range []struct{ fs, mkfs string }{{"ext4", "mkfs.ext4"}, {"xfs", "mkfs.xfs"}, {"btrfs", "mkfs.btrfs"}} {
		img := filepath.Join(t.TempDir(), "img")
		f, _ := os.Create(img)
		f.Truncate(400 << 20)
		f.Close()
		if out, err := exec.Command(c.mkfs, "-q", img).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", c.mkfs, err, out)
		}
		got, err := DetectFS(img)
		if err != nil || got != c.fs {
			t.Errorf("DetectFS(%s) = %q, %v", c.fs, got, err)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, make([]byte, 1<<20), 0o644)
	if _, err := DetectFS(empty); err == nil {
		t.Error("an empty device has a filesystem?")
	}
}

// A mount whose last reference goes a moment after Unmount starts is
// unmounted; one held throughout is busy.
func TestUnmountWaitsOutABriefHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs (CI runs as root)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })

	held, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = Unmount(dir, false)
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Unmount of a mount held throughout: %v, want EBUSY", err)
	}
	if ok, _ := IsMountpoint(dir); !ok {
		t.Fatal("a busy mount was unmounted")
	}

	time.AfterFunc(busyWait/5, func() { held.Close() })
	if err := Unmount(dir, false); err != nil {
		t.Fatalf("Unmount of a mount let go after %v: %v", busyWait/5, err)
	}
	if ok, _ := IsMountpoint(dir); ok {
		t.Error("still mounted")
	}
}
