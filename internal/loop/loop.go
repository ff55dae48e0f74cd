// Package loop attaches files to loop devices with the kernel's ioctls.
//
// Devices are attached with autoclear: the kernel detaches one when its
// last user goes away. A caller holds the returned Device open until the
// filesystem on it is mounted (the mount then keeps it), so a process
// killed at any point leaks no loop device.
package loop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Device is an attached loop device, held open.
type Device struct {
	Path string // /dev/loopN
	Num  int
	f    *os.File
}

// Close drops our hold; with autoclear the kernel detaches the device as
// soon as nothing else (a mount) uses it.
func (d *Device) Close() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// Attach attaches the file at path to a free loop device.
func Attach(path string, readOnly bool) (*Device, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	backing, err := os.OpenFile(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	defer backing.Close()

	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	defer ctl.Close()

	// Another process may take the device we were offered between
	// LOOP_CTL_GET_FREE and the configure call; the kernel then says
	// EBUSY and we ask again.
	for attempt := 0; attempt < 64; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("attach %s: get free loop device: %w", path, err)
		}
		dev, err := openDevice(n, flags)
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", path, err)
		}
		err = configure(dev, backing, path, readOnly)
		if errors.Is(err, unix.EBUSY) {
			dev.Close()
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			dev.Close()
			return nil, fmt.Errorf("attach %s to /dev/loop%d: %w", path, n, err)
		}
		// Drop whatever the device's page cache still holds from its
		// previous binding: the kernel detaches autoclear devices in the
		// background, and a filesystem read through stale pages would see
		// another volume's blocks.
		if err := unix.IoctlSetInt(int(dev.Fd()), unix.BLKFLSBUF, 0); err != nil {
			dev.Close()
			return nil, fmt.Errorf("attach %s to /dev/loop%d: flush buffers: %w", path, n, err)
		}
		return &Device{Path: dev.Name(), Num: n, f: dev}, nil
	}
	return nil, fmt.Errorf("attach %s: no free loop device after 64 attempts", path)
}

// openDevice opens /dev/loopN, making the node when devtmpfs has not (yet).
func openDevice(n, flags int) (*os.File, error) {
	p := "/dev/loop" + strconv.Itoa(n)
	f, err := os.OpenFile(p, flags|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err := unix.Mknod(p, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("mknod %s: %w", p, err)
		}
		f, err = os.OpenFile(p, flags|unix.O_CLOEXEC, 0)
	}
	return f, err
}

func configure(dev, backing *os.File, path string, readOnly bool) error {
	info := unix.LoopInfo64{Flags: unix.LO_FLAGS_AUTOCLEAR}
	if readOnly {
		info.Flags |= unix.LO_FLAGS_READ_ONLY
	}
	copy(info.File_name[:], path)
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Info: info}
	err := unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return err
	}
	// Kernels before 5.8 lack LOOP_CONFIGURE: attach, then set flags.
	if err := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(int(dev.Fd()), &info); err != nil {
		unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// Attached maps backing file paths to the loop devices they are attached
// to, from sysfs. Deleted backing files are left out.
func Attached() map[string]string {
	out := map[string]string{}
	ents, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range ents {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		file := strings.TrimRight(string(b), "\n")
		if strings.HasSuffix(file, " (deleted)") {
			continue
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(p)))
		out[file] = "/dev/" + name
	}
	return out
}

// Written is what block device dev (/dev/loopN) has been asked to write
// since it was attached, in bytes: the seventh field of its sysfs stat,
// in 512-byte sectors. Tests read it to tell a write-back from a discard.
func Written(dev string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "stat"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 7 {
		return 0, fmt.Errorf("%s's stat: %q", dev, b)
	}
	n, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s's stat: %w", dev, err)
	}
	return n * 512, nil
}
