// Package mount reads the mount table and mounts and unmounts block
// devices with mount(2), without calling mount(8).
package mount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is one line of /proc/self/mountinfo.
type Entry struct {
	ID, Parent   int
	Major, Minor uint32
	Root         string
	Mountpoint   string
	Options      string
	FSType       string
	Source       string
}

// Table reads /proc/self/mountinfo.
func Table() ([]Entry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if e, ok := parseLine(sc.Text()); ok {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// parseLine parses "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
func parseLine(line string) (Entry, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Entry{}, false
	}
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if len(f) < 6 || len(g) < 2 {
		return Entry{}, false
	}
	var e Entry
	e.ID, _ = strconv.Atoi(f[0])
	e.Parent, _ = strconv.Atoi(f[1])
	maj, min, _ := strings.Cut(f[2], ":")
	m1, _ := strconv.ParseUint(maj, 10, 32)
	m2, _ := strconv.ParseUint(min, 10, 32)
	e.Major, e.Minor = uint32(m1), uint32(m2)
	e.Root = unescape(f[3])
	e.Mountpoint = unescape(f[4])
	e.Options = f[5]
	e.FSType = g[0]
	e.Source = unescape(g[1])
	return e, true
}

// unescape undoes the kernel's octal escapes (\040 for space and so on).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Lookup finds the topmost mount at path in a table.
func Lookup(table []Entry, path string) (Entry, bool) {
	for i := len(table) - 1; i >= 0; i-- {
		if table[i].Mountpoint == path {
			return table[i], true
		}
	}
	return Entry{}, false
}

// IsMountpoint tells whether something is mounted at path.
func IsMountpoint(path string) (bool, error) {
	t, err := Table()
	if err != nil {
		return false, err
	}
	_, ok := Lookup(t, path)
	return ok, nil
}

// flagOptions are mount(8) options that are flags to mount(2) rather than
// data for the filesystem.
var flagOptions = map[string]struct {
	set   bool
	flags uintptr
}{
	"ro": {true, unix.MS_RDONLY}, "rw": {false, unix.MS_RDONLY},
	"nosuid": {true, unix.MS_NOSUID}, "suid": {false, unix.MS_NOSUID},
	"nodev": {true, unix.MS_NODEV}, "dev": {false, unix.MS_NODEV},
	"noexec": {true, unix.MS_NOEXEC}, "exec": {false, unix.MS_NOEXEC},
	"sync": {true, unix.MS_SYNCHRONOUS}, "async": {false, unix.MS_SYNCHRONOUS},
	"noatime": {true, unix.MS_NOATIME}, "atime": {false, unix.MS_NOATIME},
	"nodiratime": {true, unix.MS_NODIRATIME}, "diratime": {false, unix.MS_NODIRATIME},
	"relatime": {true, unix.MS_RELATIME}, "norelatime": {false, unix.MS_RELATIME},
	"strictatime": {true, unix.MS_STRICTATIME},
	"lazytime":    {true, unix.MS_LAZYTIME}, "nolazytime": {false, unix.MS_LAZYTIME},
	"dirsync":  {true, unix.MS_DIRSYNC},
	"defaults": {false, 0},
}

// ParseOptions splits a mount(8)-style option string into mount(2) flags
// and the filesystem's data string.
func ParseOptions(opts string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if f, ok := flagOptions[o]; ok {
			if f.set {
				flags |= f.flags
			} else {
				flags &^= f.flags
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// Device mounts a block device at target.
func Device(dev, target, fstype, options string) error {
	flags, data := ParseOptions(options)
	if err := unix.Mount(dev, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s, %q): %w", dev, target, fstype, options, err)
	}
	return nil
}

// Bind bind-mounts the directory source at target.
func Bind(source, target string) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, target, err)
	}
	return nil
}

// Unmount unmounts target. With lazy, a busy mount is detached now and
// cleaned up by the kernel when its last user leaves. Not mounted is not
// an error.
//
// A busy mount is tried again for up to busyWait: a reference can outlive
// its holder for a moment. A child forked by another goroutine holds a
// copy of every descriptor until its exec closes them, so a directory
// opened on the mount to freeze it, closed just before, can still be
// open there (a crash test with many bootstraps at once saw EBUSY so).
// A user's shell inside the mount still gets EBUSY, a little later.
func Unmount(target string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	deadline := time.Now().Add(busyWait)
	for {
		err := unix.Unmount(target, flags)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(busyRetry)
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			if ok, _ := IsMountpoint(target); !ok {
				return nil
			}
		}
		return fmt.Errorf("unmount %s: %w", target, err)
	}
}

// busyWait bounds Unmount's retries of a busy mount; busyRetry is the
// pause between them.
const (
	busyWait  = 500 * time.Millisecond
	busyRetry = 25 * time.Millisecond
)

// FIFREEZE and FITHAW are _IOWR('X', 119/120, int); x/sys/unix lacks them.
const (
	fiFreeze = 0xc0045877
	fiThaw   = 0xc0045878
)

// Freeze freezes the filesystem mounted at dir (FIFREEZE) so a block-level
// copy of it is consistent, and returns the thaw.
func Freeze(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.IoctlSetInt(int(d.Fd()), fiFreeze, 0); err != nil {
		d.Close()
		return nil, fmt.Errorf("freeze %s: %w", dir, err)
	}
	return func() {
		unix.IoctlSetInt(int(d.Fd()), fiThaw, 0)
		d.Close()
	}, nil
}

// Thaw thaws a filesystem left frozen by a process that died while it
// held it frozen. Not frozen is not an error.
func Thaw(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	unix.IoctlSetInt(int(d.Fd()), fiThaw, 0)
}

// DetectFS reads the filesystem type off a block device's superblock, for
// volumes whose config does not say (made by another tool).
func DetectFS(dev string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 0x10048)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	switch {
	case len(buf) >= 4 && string(buf[:4]) == "XFSB":
		return "xfs", nil
	case len(buf) >= 0x10048 && string(buf[0x10040:0x10048]) == "_BHRfS_M":
		return "btrfs", nil
	case len(buf) >= 1082 && buf[1080] == 0x53 && buf[1081] == 0xef:
		return "ext4", nil // ext2/3 mount as ext4 too
	}
	return "", fmt.Errorf("%s: no filesystem thinroot recognizes (ext4, xfs, btrfs)", dev)
}
