package fsview

import (
	"context"
	"errors"
	"syscall"

	"github.com/thinroot/thinroot/lvm"
)

// errnoTable maps the model's sentinel errors to what a shell user sees.
// The order matters only for errors wrapping two sentinels.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	{lvm.ErrInvalidName, syscall.EINVAL},
	{lvm.ErrExists, syscall.EEXIST},
	{lvm.ErrPoolFull, syscall.ENOSPC},
	{lvm.ErrBusy, syscall.EBUSY},
	{lvm.ErrNotEmpty, syscall.ENOTEMPTY},
	{lvm.ErrNotAllowed, syscall.EPERM},
	{lvm.ErrNotFound, syscall.ENOENT},
	// An uninitialized config has nothing to act on yet.
	{lvm.ErrNotReady, syscall.ENOENT},
	{lvm.ErrUnsupported, syscall.ENOTSUP},
	{context.Canceled, syscall.EINTR},
	{context.DeadlineExceeded, syscall.ETIMEDOUT},
}

// passErrno are system errors that mean the same to the user as to us
// when nothing more specific was said (a backend out of space, a
// read-only state directory).
var passErrno = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EACCES, syscall.EROFS}

// Errno maps an error of the model to an errno. Anything it does not
// know is EIO: the caller logs the reason.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			return e.errno
		}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		for _, p := range passErrno {
			if en == p {
				return en
			}
		}
	}
	return syscall.EIO
}
