package lvm2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// devices finds the block device of an active LV from its device numbers,
// through sysfs, never through udev's symlinks: udev may be slow, absent
// (containers, the test VM) or configured differently.
type devices struct {
	sys, dev string
	wait     time.Duration
	log      *slog.Logger
}

// node returns /dev/<name> for device major:minor. It waits (bounded) for
// the kernel to show the device in sysfs, then makes the node itself with
// mknod when nothing else did.
func (d devices) node(ctx context.Context, major, minor int) (string, error) {
	uevent := filepath.Join(d.sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor), "uevent")
	deadline := time.Now().Add(d.wait)
	delay := 5 * time.Millisecond
	for {
		name, err := devName(uevent)
		if err == nil {
			return d.ensureNode(name, major, minor)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("device %d:%d did not appear in %s within %v", major, minor, filepath.Dir(uevent), d.wait)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for device %d:%d: %w", major, minor, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// devName reads DEVNAME from a sysfs uevent file ("dm-3").
func devName(uevent string) (string, error) {
	b, err := os.ReadFile(uevent)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok && v != "" {
			if strings.Contains(v, "..") {
				return "", fmt.Errorf("%s: unexpected DEVNAME %q", uevent, v)
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no DEVNAME", uevent)
}

// ensureNode checks /dev/<name> is the block device major:minor, creating
// it when missing. A node with other numbers is an error, never replaced.
func (d devices) ensureNode(name string, major, minor int) (string, error) {
	path := filepath.Join(d.dev, name)
	want := unix.Mkdev(uint32(major), uint32(minor))
	for try := 0; ; try++ {
		var st unix.Stat_t
		err := unix.Stat(path, &st)
		if err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want {
				return "", fmt.Errorf("%s exists but is not block device %d:%d", path, major, minor)
			}
			return path, nil
		}
		if !errors.Is(err, unix.ENOENT) || try > 0 {
			return "", fmt.Errorf("device node %s: %w", path, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", fmt.Errorf("device node %s: %w", path, err)
		}
		// 0660 root:root, like the nodes lvm2 makes when udev is off.
		err = unix.Mknod(path, unix.S_IFBLK|0o660, int(want))
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("mknod %s (%d:%d): %w", path, major, minor, err)
		}
		if err == nil {
			d.log.Debug("made device node", "path", path, "major", major, "minor", minor)
		}
	}
}
