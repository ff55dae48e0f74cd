package btrfs

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls the backend uses (linux/btrfs.h); x/sys/unix lacks
// them. Calling them directly costs no process per volume, which is what
// keeps a workdir ready in milliseconds.
const (
	iocSubvolCreate = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	iocSnapDestroy  = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocSnapCreateV2 = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocInoLookup    = 0xd0009412 // _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)
	iocFSInfo       = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)
	iocTreeSearch   = 0xd0009411 // _IOWR(0x94, 17, struct btrfs_ioctl_search_args)
	iocSync         = 0x9408     // _IO(0x94, 8)

	rootTreeID  = 1   // BTRFS_ROOT_TREE_OBJECTID
	rootItemKey = 132 // BTRFS_ROOT_ITEM_KEY

	subvolReadOnly  = 1 << 1 // BTRFS_SUBVOL_RDONLY
	firstFreeObject = 256    // BTRFS_FIRST_FREE_OBJECTID: a subvolume's root directory
)

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	fd   int64
	name [4088]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2 (the qgroup union unused).
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	_       [4]uint64
	name    [4040]byte
}

// inoLookupArgs is struct btrfs_ioctl_ino_lookup_args.
type inoLookupArgs struct {
	treeID   uint64
	objectID uint64
	name     [4080]byte
}

// fsInfoArgs is the start of struct btrfs_ioctl_fs_info_args (1024 bytes).
type fsInfoArgs struct {
	maxID      uint64
	numDevices uint64
	fsid       [16]byte
	_          [1024 - 32]byte
}

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func setName(dst []byte, name string) error {
	if len(name) >= len(dst) {
		return fmt.Errorf("subvolume name %q is too long", name)
	}
	copy(dst, name)
	return nil
}

// subvolCreate makes an empty subvolume name in the directory dir.
func subvolCreate(dir *os.File, name string) error {
	var a volArgs
	if err := setName(a.name[:], name); err != nil {
		return err
	}
	return ioctl(dir.Fd(), iocSubvolCreate, unsafe.Pointer(&a))
}

// snapshotCreate makes name in dir a snapshot of the subvolume src,
// read-only or writable.
func snapshotCreate(dir, src *os.File, name string, readOnly bool) error {
	a := volArgsV2{fd: int64(src.Fd())}
	if readOnly {
		a.flags = subvolReadOnly
	}
	if err := setName(a.name[:], name); err != nil {
		return err
	}
	return ioctl(dir.Fd(), iocSnapCreateV2, unsafe.Pointer(&a))
}

// subvolDestroy deletes the subvolume name in dir (read-only ones too).
func subvolDestroy(dir *os.File, name string) error {
	var a volArgs
	if err := setName(a.name[:], name); err != nil {
		return err
	}
	return ioctl(dir.Fd(), iocSnapDestroy, unsafe.Pointer(&a))
}

// subvolID is the id of the subvolume whose root is path.
func subvolID(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	a := inoLookupArgs{objectID: firstFreeObject}
	if err := ioctl(f.Fd(), iocInoLookup, unsafe.Pointer(&a)); err != nil {
		return 0, err
	}
	return a.treeID, nil
}

// fsUUID is the filesystem's UUID, as sysfs names it.
func fsUUID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var a fsInfoArgs
	if err := ioctl(f.Fd(), iocFSInfo, unsafe.Pointer(&a)); err != nil {
		return "", err
	}
	u := a.fsid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// searchKey is struct btrfs_ioctl_search_key; searchArgs adds the buffer
// the results come in (4096 bytes in all).
type searchKey struct {
	treeID, minObjectID, maxObjectID, minOffset, maxOffset, minTransID, maxTransID uint64
	minType, maxType, nrItems, _                                                   uint32
	_                                                                              [4]uint64
}

type searchArgs struct {
	key searchKey
	buf [4096 - 104]byte
}

// subvolExists tells whether the filesystem at dir still has the root of
// subvolume id: a deleted subvolume keeps it until the cleaner has
// dropped its tree and given its space back.
func subvolExists(dir *os.File, id uint64) (bool, error) {
	a := searchArgs{key: searchKey{treeID: rootTreeID, minObjectID: id, maxObjectID: id,
		maxOffset: ^uint64(0), maxTransID: ^uint64(0), minType: rootItemKey, maxType: rootItemKey, nrItems: 1}}
	if err := ioctl(dir.Fd(), iocTreeSearch, unsafe.Pointer(&a)); err != nil {
		return false, err
	}
	return a.key.nrItems > 0, nil
}

// syncFS commits the filesystem's transaction and wakes its cleaner, which
// then drops deleted subvolumes.
func syncFS(dir *os.File) error { return ioctl(dir.Fd(), iocSync, nil) }
