package mount

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fsShutdown is FS_IOC_SHUTDOWN (ext4's EXT4_IOC_SHUTDOWN, XFS's
// XFS_IOC_GOINGDOWN): _IOR('X', 125, __u32). noLogFlush is its
// EXT4_GOING_FLAGS_NOLOGFLUSH / XFS_FSOP_GOING_FLAGS_NOLOGFLUSH: stop
// all I/O now, write back neither data nor the journal.
const (
	fsShutdown = 0x8004587d
	noLogFlush = 2
)

// discardable are the filesystems whose shutdown ioctl Discard uses.
var discardable = map[string]bool{"ext4": true, "xfs": true}

// Discard unmounts a filesystem whose contents are about to be destroyed
// without writing back what its cache still holds: unmounting a workdir
// after a package manager wrote hundreds of MiB into it would otherwise
// write all of that to a volume removed a moment later (a second or more
// per build). It shuts the filesystem down (FS_IOC_SHUTDOWN with
// NOLOGFLUSH) and then unmounts it.
//
// It does so only for ext4 or XFS mounted whole from a block device that
// no other mount in this namespace shows; anything else is unmounted as
// Unmount does. A mount in use fails with EBUSY and is left as it was: the
// kernel's expiry mark (MNT_EXPIRE) tells whether anyone uses it without
// unmounting it. One who enters it in the moment between that check and
// the unmount finds it shut down (I/O errors) and the unmount fails with
// EBUSY; the caller was removing it anyway.
func Discard(target string) error {
	table, err := Table()
	if err != nil {
		return err
	}
	e, ok := Lookup(table, target)
	if !ok {
		return nil
	}
	if !soleBlockMount(table, e) {
		return Unmount(target, false)
	}
	gone, err := waitUnused(target)
	if err != nil || gone {
		return err
	}
	if err := shutdown(target, e); err != nil {
		// A kernel without the ioctl: write back and unmount as usual.
		return Unmount(target, false)
	}
	if err := Unmount(target, false); err != nil {
		return fmt.Errorf("%w (entered while being removed: its filesystem is shut down; leave it and remove it again)", err)
	}
	return nil
}

// soleBlockMount tells whether e is an ext4 or XFS filesystem mounted
// whole from a block device, with no other mount of the same device:
// shutting it down touches nothing but e.
func soleBlockMount(table []Entry, e Entry) bool {
	if !discardable[e.FSType] || e.Root != "/" {
		return false
	}
	if fi, err := os.Stat(e.Source); err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return false
	}
	for _, o := range table {
		if o.ID != e.ID && o.Major == e.Major && o.Minor == e.Minor {
			return false
		}
	}
	return true
}

// waitUnused asks the kernel whether target is in use with MNT_EXPIRE,
// which fails with EAGAIN on a mount nobody uses and unmounts nothing
// then; a brief holder (a child forked with a copy of a descriptor, until
// its exec) is waited out as Unmount does. gone says the mount, marked
// expired earlier and untouched since, was unmounted by the call.
func waitUnused(target string) (gone bool, err error) {
	deadline := time.Now().Add(busyWait)
	for {
		err := unix.Unmount(target, unix.MNT_EXPIRE)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return false, nil
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(busyRetry)
			continue
		}
		return false, fmt.Errorf("unmount %s: %w", target, err)
	}
}

// shutdown shuts down the filesystem of mount e at dir without flushing.
// The directory opened must be on e's device: a mount gone in between
// would leave the directory beneath, on the parent filesystem, which
// must never be shut down.
func shutdown(dir string, e Entry) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if unix.Major(st.Dev) != e.Major || unix.Minor(st.Dev) != e.Minor {
		return fmt.Errorf("%s is no longer the mount of %s", dir, e.Source)
	}
	return unix.IoctlSetPointerInt(fd, fsShutdown, noLogFlush)
}
