// Package lock takes the lock files thinroot shares with mock and with
// other thinroot processes: open-file-description (OFD) locks, which the
// kernel makes conflict with the POSIX lockf() locks mock takes. The
// Manager, the backends and the builder all lock through it. It imports
// nothing of thinroot.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// mock takes POSIX record locks with lockf() on whole files;
// thinroot takes open-file-description (OFD) locks on the same files. The
// kernel makes the two kinds conflict with each other, so mock and thinroot
// exclude each other, while OFD locks (unlike lockf) also exclude goroutines
// of one process from each other and are not dropped when some unrelated
// descriptor of the file is closed. Every acquisition opens its own
// descriptor; closing it releases the lock, and so does the process dying.

// Held is an acquired lock. Release it exactly once.
type Held struct {
	f    *os.File
	path string
}

// Path is the lock file's path.
func (h *Held) Path() string { return h.path }

// Release drops the lock.
func (h *Held) Release() {
	if h != nil && h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// Downgrade turns an exclusive lock into a shared one without a window in
// which nobody holds it (mock relocks shared after init the same way).
func (h *Held) Downgrade() error {
	return setOFD(h.f, unix.F_OFD_SETLK, unix.F_RDLCK)
}

// Holder describes who holds a lock that conflicts with ours.
type Holder struct {
	Exclusive bool
	// PID is the holder's pid for POSIX locks (mock); OFD locks have none
	// (the kernel reports -1).
	PID int
}

func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o664)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	return f, nil
}

func setOFD(f *os.File, cmd int, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

func lockType(exclusive bool) int16 {
	if exclusive {
		return unix.F_WRLCK
	}
	return unix.F_RDLCK
}

// TryLock takes the lock if it is free; it returns (nil, nil) when someone
// else holds a conflicting lock.
func TryLock(path string, exclusive bool) (*Held, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	err = setOFD(f, unix.F_OFD_SETLK, lockType(exclusive))
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		f.Close()
		return nil, nil
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Held{f: f, path: path}, nil
}

// TryLockOpen takes an exclusive lock on an already open file without
// waiting; false when someone else holds one. The lock belongs to f's
// open file description: closing f releases it.
func TryLockOpen(f *os.File) (bool, error) {
	err := setOFD(f, unix.F_OFD_SETLK, unix.F_WRLCK)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return false, nil
	}
	return err == nil, err
}

// Adopt makes a Held of an open file the caller has locked with
// TryLockOpen, so that the file can be written through File and the lock
// dropped with Release like any other.
func Adopt(f *os.File) *Held { return &Held{f: f, path: f.Name()} }

// File is the locked file itself (for a lock file that also holds data).
func (h *Held) File() *os.File { return h.f }

// Lock takes the lock, blocking in the kernel (no polling) until it is
// free. waiting, if not nil, is called once before blocking, with who holds
// the lock. When ctx ends first, Lock returns ctx.Err(); the blocked
// request is then dropped as soon as the kernel grants it.
func Lock(ctx context.Context, path string, exclusive bool, waiting func(Holder)) (*Held, error) {
	h, err := TryLock(path, exclusive)
	if h != nil || err != nil {
		return h, err
	}
	if waiting != nil {
		holder, _ := HolderOf(path, exclusive)
		waiting(holder)
	}
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- setOFD(f, unix.F_OFD_SETLKW, lockType(exclusive)) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return &Held{f: f, path: path}, nil
	case <-ctx.Done():
		go func() {
			<-done
			f.Close()
		}()
		return nil, ctx.Err()
	}
}

// HolderOf reports who holds a lock conflicting with the one asked for;
// Holder is zero when the lock is free.
func HolderOf(path string, exclusive bool) (Holder, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Holder{}, false
	}
	defer f.Close()
	lk := unix.Flock_t{Type: lockType(exclusive), Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return Holder{}, false
	}
	return Holder{Exclusive: lk.Type == unix.F_WRLCK, PID: int(lk.Pid)}, true
}
