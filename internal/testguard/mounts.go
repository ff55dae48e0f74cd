package testguard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/mount"
)

// fusectl is where the kernel lists FUSE connections, one directory per
// connection named by its device number, with an abort file.
const fusectl = "/sys/fs/fuse/connections"

// under tells whether p is dir or inside it.
func under(p, dir string) bool {
	return dir != "" && (p == dir || strings.HasPrefix(p, dir+"/"))
}

// Mounted returns the mounts at or under dir, deepest first. It reads
// the mount table only: nothing here touches a mount, which could hang.
func Mounted(dir string) []mount.Entry {
	table, err := mount.Table()
	if err != nil {
		return nil
	}
	var out []mount.Entry
	for _, e := range table {
		if under(e.Mountpoint, dir) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Mountpoint, "/") > strings.Count(out[j].Mountpoint, "/")
	})
	return out
}

// isFUSE tells whether a mount is served by a FUSE server.
func isFUSE(e mount.Entry) bool {
	return e.FSType == "fuse" || strings.HasPrefix(e.FSType, "fuse.")
}

// Abort aborts the FUSE connection of every FUSE mount at or under dir
// and returns their mount points. A request in flight on an aborted
// connection fails with ECONNABORTED, whatever its server is doing.
func Abort(dir string) []string {
	var done []string
	for _, e := range Mounted(dir) {
		if !isFUSE(e) {
			continue
		}
		if err := abortConn(e); err != nil {
			fmt.Fprintf(os.Stderr, "testguard: abort the FUSE connection of %s: %v\n", e.Mountpoint, err)
			continue
		}
		done = append(done, e.Mountpoint)
	}
	return done
}

// abortConn writes to the connection's abort file, mounting fusectl
// first when the host has not.
func abortConn(e mount.Entry) error {
	if err := ensureFusectl(); err != nil {
		return err
	}
	// A FUSE mount's device is anonymous (major 0): the connection's
	// directory is named by the whole device number.
	dev := unix.Mkdev(e.Major, e.Minor)
	p := filepath.Join(fusectl, strconv.FormatUint(dev, 10), "abort")
	err := os.WriteFile(p, []byte("1"), 0o200)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the connection is already gone
	}
	return err
}

// ensureFusectl mounts the FUSE control filesystem when it is missing.
func ensureFusectl() error {
	table, err := mount.Table()
	if err != nil {
		return err
	}
	for _, e := range table {
		if e.FSType == "fusectl" && e.Mountpoint == fusectl {
			return nil
		}
	}
	if err := unix.Mount("none", fusectl, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount fusectl on %s: %w", fusectl, err)
	}
	return nil
}

// Sweep clears what is left under dir: it aborts FUSE connections,
// detaches mounts (deepest first) and loop devices backed by files there,
// and returns a line for each thing it found.
func Sweep(dir string) []string {
	var left []string
	Abort(dir)
	for _, e := range Mounted(dir) {
		left = append(left, fmt.Sprintf("mount %s (%s from %s)", e.Mountpoint, e.FSType, e.Source))
		if err := unix.Unmount(e.Mountpoint, unix.MNT_DETACH); err != nil {
			left = append(left, fmt.Sprintf("  detach %s: %v", e.Mountpoint, err))
		}
	}
	for file, dev := range loops(dir) {
		left = append(left, fmt.Sprintf("loop device %s (backed by %s)", dev, file))
		if err := detachLoop(dev); err != nil {
			left = append(left, fmt.Sprintf("  detach %s: %v", dev, err))
		}
	}
	sort.Strings(left)
	return left
}

// loops maps backing files at or under dir (deleted ones too) to their
// loop devices.
func loops(dir string) map[string]string {
	out := map[string]string{}
	ents, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range ents {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		file := strings.TrimSuffix(strings.TrimRight(string(b), "\n"), " (deleted)")
		if under(file, dir) {
			out[file] = "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(p)))
		}
	}
	return out
}

// detachLoop clears a loop device; a device still in use (a lazily
// detached mount) is set to clear itself when its last user goes.
func detachLoop(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
	if errors.Is(err, syscall.EBUSY) {
		var info *unix.LoopInfo64
		if info, err = unix.IoctlLoopGetStatus64(int(f.Fd())); err == nil {
			info.Flags |= unix.LO_FLAGS_AUTOCLEAR
			err = unix.IoctlLoopSetStatus64(int(f.Fd()), info)
		}
	}
	return err
}
