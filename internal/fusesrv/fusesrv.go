// Package fusesrv serves a FUSE file system so that its users get an
// error, never a hang, when the server dies.
//
// The kernel finishes a FUSE request only when the server answers it or
// the connection ends, and the connection ends only when every copy of
// the server's /dev/fuse descriptor is closed. Two things kept it open
// after a server was killed:
//
//   - a request the server made on its own mount: go-fuse's mount helper
//     opens a file in the new mount to learn whether the kernel polls
//     (its "poll hack"). Killed while that request was read but not yet
//     answered, the server's thread waits in the kernel for an answer
//     only the dead server could give, the process stays a zombie
//     holding the descriptor, and every user of the mount hangs with it;
//   - a child process that inherited the descriptor (go-fuse opens it
//     without close-on-exec).
//
// Mount makes no request on its own mount and marks the descriptor
// close-on-exec; Watch starts a small watchdog process that aborts the
// connection (through fusectl) as soon as the server is dying, whatever
// else holds it open.
package fusesrv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/mount"
)

// Mount mounts root on dir and serves it, as fs.Mount does, but without
// go-fuse's poll hack (a request to itself): this server never opens
// files on its own mount, which is what the hack protects against.
func Mount(dir string, root fs.InodeEmbedder, opts *fs.Options) (*fuse.Server, error) {
	server, err := mountOnly(dir, root, opts)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	return server, nil
}

// mountOnly mounts without serving: it returns once mount(2) is done,
// and needs no answer from the file system (the kernel's first request,
// INIT, waits for Serve).
func mountOnly(dir string, root fs.InodeEmbedder, opts *fs.Options) (*fuse.Server, error) {
	var mo *fuse.MountOptions
	if opts != nil {
		mo = &opts.MountOptions
	}
	server, err := fuse.NewServer(fs.NewNodeFS(root, opts), dir, mo)
	if err != nil {
		return nil, err
	}
	cloexecFuse()
	return server, nil
}

// cloexecFuse marks every /dev/fuse descriptor of this process
// close-on-exec, so no child keeps a connection alive.
func cloexecFuse() {
	for _, fd := range fuseFds() {
		unix.CloseOnExec(fd)
	}
}

// closeFuse closes every /dev/fuse descriptor of this process.
func closeFuse() {
	for _, fd := range fuseFds() {
		unix.Close(fd)
	}
}

// fuseFds lists this process's descriptors open on /dev/fuse.
func fuseFds() []int {
	var out []int
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, d := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", d.Name()))
		if err != nil || target != "/dev/fuse" {
			continue
		}
		if fd, err := strconv.Atoi(d.Name()); err == nil {
			out = append(out, fd)
		}
	}
	return out
}

// fusectl is the FUSE control file system: a directory per connection,
// named by its device number, with an abort file.
const fusectl = "/sys/fs/fuse/connections"

// Connection returns the FUSE connection number of the mount at dir,
// from the mount table (a FUSE mount's anonymous device number).
func Connection(dir string) (uint64, error) {
	table, err := mount.Table()
	if err != nil {
		return 0, err
	}
	e, ok := mount.Lookup(table, dir)
	if !ok || !strings.HasPrefix(e.FSType, "fuse") {
		return 0, fmt.Errorf("no FUSE mount on %s", dir)
	}
	return unix.Mkdev(e.Major, e.Minor), nil
}

// Abort aborts FUSE connection conn: every request on it fails at once.
// It mounts fusectl first when the host has not.
func Abort(conn uint64) error {
	if err := ensureFusectl(); err != nil {
		return err
	}
	err := os.WriteFile(filepath.Join(fusectl, fmt.Sprint(conn), "abort"), []byte("1"), 0o200)
	if os.IsNotExist(err) {
		return nil // gone already
	}
	return err
}

// fusectlMagic is the f_type of the FUSE control file system.
const fusectlMagic = 0x65735543

// ensureFusectl mounts fusectl where the host has not.
func ensureFusectl() error {
	var st unix.Statfs_t
	if unix.Statfs(fusectl, &st) == nil && st.Type == fusectlMagic {
		return nil
	}
	if err := unix.Mount("none", fusectl, "fusectl", 0, ""); err != nil && err != unix.EBUSY {
		return fmt.Errorf("mount fusectl on %s: %w", fusectl, err)
	}
	return nil
}
