package file

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FIEMAP, to learn how much of an image is its own (not shared with a
// clone): that is what deleting it gives back to the pool.

const (
	fsIocFiemap        = 0xc020660b // _IOWR('f', 11, struct fiemap)
	fiemapFlagSync     = 0x1
	fiemapExtentLast   = 0x1
	fiemapExtentShared = 0x2000
	fiemapBatch        = 256
)

type fiemapExtent struct {
	Logical, Physical, Length uint64
	_                         [2]uint64
	Flags                     uint32
	_                         [3]uint32
}

type fiemapHeader struct {
	Start, Length                               uint64
	Flags, MappedExtents, ExtentCount, Reserved uint32
}

type fiemapRequest struct {
	fiemapHeader
	Extents [fiemapBatch]fiemapExtent
}

// ownBytes sums the extents of path that no other file shares. It returns
// -1 when the filesystem cannot tell.
func ownBytes(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	var total int64
	var start uint64
	for {
		req := fiemapRequest{fiemapHeader: fiemapHeader{Start: start, Length: ^uint64(0) - start, Flags: fiemapFlagSync, ExtentCount: fiemapBatch}}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&req))); e != 0 {
			return -1
		}
		n := int(req.MappedExtents)
		if n == 0 {
			return total
		}
		for i := 0; i < n; i++ {
			e := req.Extents[i]
			if e.Flags&fiemapExtentShared == 0 {
				total += int64(e.Length)
			}
			if e.Flags&fiemapExtentLast != 0 {
				return total
			}
			start = e.Logical + e.Length
		}
	}
}
