// Package imagepool keeps pools that are a filesystem of their own: an
// image thinroot creates, formats and loop-mounts under the state
// directory, or an existing directory on a suitable filesystem. The file
// backend (XFS with reflink) and the btrfs backend keep their volumes in
// such pools, and share this code for making, finding, mounting again and
// removing them.
//
// On-disk layout under Store.Dir:
//
//	<pool>.img                     the pool image (image pools)
//	<pool>/                        its mount point, or a symlink to the directory (directory pools)
//	<pool>/thinroot-pool.json      the pool's record
//	<pool>/volumes/                the backend's volumes
//
// A pool exists once its record does; everything else is found again
// from these files, sysfs and the mount table. It imports lvm/backend and
// internal helpers.
package imagepool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

const recordName = "thinroot-pool.json"

// Store is the pools of one backend under one directory.
type Store struct {
	// Dir holds the images, mount points and directory links.
	Dir string
	// Kind names the backend in messages ("file", "btrfs").
	Kind string
	// FSType is the image's filesystem, as mounted.
	FSType string
	// MinSize is the smallest image the filesystem takes.
	MinSize int64
	// Mkfs formats a new image with a label.
	Mkfs func(ctx context.Context, image, label string) error
	// CheckDir says why a directory cannot be a pool (nil: it can).
	CheckDir func(dir string) error
	// VolumesMode is the mode of a new volumes directory (0755 when 0):
	// 0700 where the volumes are the buildroots' own directories.
	VolumesMode os.FileMode
	Log         *slog.Logger
}

// Record is thinroot-pool.json.
type Record struct {
	Name          string    `json:"name"`
	Kind          string    `json:"kind"` // "image" or "directory"
	Directory     string    `json:"directory,omitempty"`
	Created       time.Time `json:"created"`
	WarnPercent   float64   `json:"warn_percent"`
	RefusePercent float64   `json:"refuse_percent"`
}

func (s *Store) image(pool string) string { return filepath.Join(s.Dir, pool+".img") }

func (s *Store) volumesMode() os.FileMode {
	if s.VolumesMode == 0 {
		return 0o755
	}
	return s.VolumesMode
}

// Path is the directory through which the pool's files are reached: the
// image's mount point or the link to a directory pool.
func (s *Store) Path(pool string) string { return filepath.Join(s.Dir, pool) }

// Volumes is the pool's volumes directory.
func (s *Store) Volumes(pool string) string { return filepath.Join(s.Path(pool), "volumes") }

// ImagePath is the image of an image pool (to tell a pool's loop device
// from its volumes').
func (s *Store) ImagePath(pool string) string { return s.image(pool) }

func (s *Store) errorf(pool, format string, args ...any) error {
	return fmt.Errorf("%s pool %s: %w", s.Kind, pool, fmt.Errorf(format, args...))
}

// Lock serializes pool creation, mounting and removal between processes
// sharing the state directory.
func (s *Store) Lock(ctx context.Context, pool string) (*lock.Held, error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	return lock.Lock(ctx, filepath.Join(s.Dir, "."+pool+".lock"), true, func(lock.Holder) {
		s.Log.Info("waiting for the pool lock", "backend", s.Kind, "pool", pool)
	})
}

// kindOf tells how a pool exists on disk: "image", "directory" or "".
func (s *Store) kindOf(pool string) string {
	if fi, err := os.Lstat(s.Path(pool)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "directory"
	}
	if _, err := os.Stat(s.image(pool)); err == nil {
		return "image"
	}
	return ""
}

// Create makes an image pool or adopts a directory.
func (s *Store) Create(ctx context.Context, spec backend.PoolSpec) error {
	if err := mock.ValidatePool(spec.Name); err != nil {
		return err
	}
	l, err := s.Lock(ctx, spec.Name)
	if err != nil {
		return err
	}
	defer l.Release()
	if s.kindOf(spec.Name) != "" {
		return fmt.Errorf("%s pool %s: %w", s.Kind, spec.Name, backend.ErrExists)
	}
	rec := Record{Name: spec.Name, Created: time.Now().UTC(),
		WarnPercent: spec.WarnPercent, RefusePercent: spec.RefusePercent}
	if rec.WarnPercent == 0 {
		rec.WarnPercent = backend.DefaultWarnPercent
	}
	if rec.RefusePercent == 0 {
		rec.RefusePercent = backend.DefaultRefusePercent
	}
	if spec.Directory != "" {
		return s.adoptDirectory(spec, rec)
	}
	return s.createImage(ctx, spec, rec)
}

func (s *Store) adoptDirectory(spec backend.PoolSpec, rec Record) error {
	dir, err := filepath.Abs(spec.Directory)
	if err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return s.errorf(spec.Name, "%w", err)
	}
	if !fi.IsDir() {
		return s.errorf(spec.Name, "%s is not a directory", dir)
	}
	if err := s.CheckDir(dir); err != nil {
		return s.errorf(spec.Name, "%w", err)
	}
	rec.Kind, rec.Directory = "directory", dir
	if err := os.MkdirAll(filepath.Join(dir, "volumes"), s.volumesMode()); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, recordName), rec); err != nil {
		return err
	}
	// Publish by renaming a symlink into place.
	tmp := s.Path(spec.Name) + ".tmp-link"
	os.Remove(tmp)
	if err := os.Symlink(dir, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.Path(spec.Name)); err != nil {
		os.Remove(tmp)
		return err
	}
	s.Log.Info("adopted a directory as a pool", "backend", s.Kind, "pool", spec.Name, "dir", dir)
	return fsutil.SyncDir(s.Dir)
}

func (s *Store) createImage(ctx context.Context, spec backend.PoolSpec, rec Record) error {
	if spec.Size < s.MinSize {
		return s.errorf(spec.Name, "size %d bytes is too small: a %s pool image needs at least %d MiB", spec.Size, s.FSType, s.MinSize>>20)
	}
	img := s.image(spec.Name)
	tmp := img + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s.errorf(spec.Name, "%w", err)
	}
	err = f.Truncate(spec.Size)
	f.Close()
	if err != nil {
		os.Remove(tmp)
		return s.errorf(spec.Name, "size the image: %w", err)
	}
	if err := s.Mkfs(context.WithoutCancel(ctx), tmp, labelFor(spec.Name)); err != nil {
		os.Remove(tmp)
		return s.errorf(spec.Name, "%w", err)
	}
	if err := os.Rename(tmp, img); err != nil {
		os.Remove(tmp)
		return err
	}
	rec.Kind = "image"
	crashpoint.Hit("pool-create:after-image")
	if err := s.mountImage(spec.Name); err != nil {
		return err
	}
	crashpoint.Hit("pool-create:after-mount")
	if err := os.MkdirAll(s.Volumes(spec.Name), s.volumesMode()); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(s.Path(spec.Name), recordName), rec); err != nil {
		return err
	}
	s.Log.Info("created a pool image", "backend", s.Kind, "pool", spec.Name, "image", img, "size", spec.Size)
	return nil
}

// labelFor makes a filesystem label (at most 12 bytes, XFS's limit) for
// a pool.
func labelFor(pool string) string {
	l := "tr-" + pool
	if len(l) > 12 {
		l = l[:12]
	}
	return l
}

// mountImage attaches and mounts an image pool if it is not mounted yet
// (after a reboot, or right after creation). Caller holds the pool lock.
func (s *Store) mountImage(pool string) error {
	dir := s.Path(pool)
	if ok, err := mount.IsMountpoint(dir); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if s.mountAttached(pool) {
		return nil
	}
	dev, err := loop.Attach(s.image(pool), false)
	if err != nil {
		return s.errorf(pool, "%w", err)
	}
	defer dev.Close()
	if err := mount.Device(dev.Path, dir, s.FSType, "noatime"); err != nil {
		return s.errorf(pool, "%w", err)
	}
	return nil
}

// mountAttached mounts the loop device the image is still attached to, if
// any. After an unmount here the filesystem lives on wherever another
// mount namespace copied the mount (a build's sandbox, any unshare): its
// loop device stays attached, and a second device over the same image
// would be a second filesystem instance writing the same blocks (XFS
// refuses it as a duplicate UUID). Mounting the same device shares the
// instance that is still there.
func (s *Store) mountAttached(pool string) bool {
	img := s.image(pool)
	if real, err := filepath.EvalSymlinks(img); err == nil {
		img = real
	}
	dev, ok := loop.Attached()[img]
	if !ok {
		return false
	}
	if err := mount.Device(dev, s.Path(pool), s.FSType, "noatime"); err != nil {
		// Detached meanwhile (its last user went): attach anew.
		s.Log.Debug("the image's loop device could not be mounted again", "pool", pool, "device", dev, "err", err)
		return false
	}
	s.Log.Info("mounted a pool again through the loop device it still had", "backend", s.Kind, "pool", pool, "device", dev)
	return true
}

// Open makes sure a pool is reachable (its image mounted) and returns its
// record; ErrNotFound when there is no such pool.
func (s *Store) Open(ctx context.Context, pool string) (*Record, error) {
	switch s.kindOf(pool) {
	case "":
		return nil, fmt.Errorf("%s pool %s: %w", s.Kind, pool, backend.ErrNotFound)
	case "image":
		if ok, err := mount.IsMountpoint(s.Path(pool)); err != nil {
			return nil, err
		} else if !ok {
			l, err := s.Lock(ctx, pool)
			if err != nil {
				return nil, err
			}
			err = s.mountImage(pool)
			l.Release()
			if err != nil {
				return nil, err
			}
		}
	}
	var rec Record
	err := readJSON(filepath.Join(s.Path(pool), recordName), &rec)
	if errors.Is(err, fs.ErrNotExist) {
		// Another process is creating the pool (it holds the pool lock
		// until its record is written): wait for it, then read again.
		l, lerr := s.Lock(ctx, pool)
		if lerr != nil {
			return nil, lerr
		}
		err = readJSON(filepath.Join(s.Path(pool), recordName), &rec)
		if errors.Is(err, fs.ErrNotExist) && s.kindOf(pool) == "image" {
			// The lock is ours and there is still no record: its creator
			// died half way. The pool was never published; undo it so the
			// next create starts clean.
			err = s.undoHalfMade(pool)
		}
		l.Release()
	}
	if err != nil {
		return nil, s.errorf(pool, "%w", err)
	}
	return &rec, nil
}

// undoHalfMade removes an image pool whose creator died before writing its
// record: unmount, delete the image. A pool that holds volumes is never
// touched (its record was lost some other way). Caller holds the pool lock.
func (s *Store) undoHalfMade(pool string) error {
	dir := s.Path(pool)
	if ents, _ := os.ReadDir(filepath.Join(dir, "volumes")); len(ents) > 0 {
		return fmt.Errorf("%s is missing but the pool holds %d volume files; restore the record by hand", recordName, len(ents))
	}
	s.Log.Warn("removing a pool whose creation was interrupted", "backend", s.Kind, "pool", pool)
	if err := mount.Unmount(dir, false); err != nil {
		return fmt.Errorf("undo an interrupted creation: %w", err)
	}
	os.Remove(dir)
	if err := os.Remove(s.image(pool)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("undo an interrupted creation: %w", err)
	}
	fsutil.SyncDir(s.Dir)
	return fmt.Errorf("its creation was interrupted: %w", backend.ErrNotFound)
}

// Remove removes a pool when count says it holds no volumes: unmount and
// delete the image, or forget the directory (its files stay, minus ours).
func (s *Store) Remove(ctx context.Context, pool string, count func() (int, error)) error {
	rec, err := s.Open(ctx, pool)
	if err != nil {
		return err
	}
	l, err := s.Lock(ctx, pool)
	if err != nil {
		return err
	}
	defer l.Release()
	n, err := count()
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%s pool %s has %d volumes: %w", s.Kind, pool, n, backend.ErrNotEmpty)
	}
	dir := s.Path(pool)
	if rec.Kind == "directory" {
		os.Remove(filepath.Join(dir, "volumes"))
		os.Remove(filepath.Join(dir, recordName))
		return os.Remove(dir)
	}
	if err := mount.Unmount(dir, false); err != nil {
		return s.errorf(pool, "%w", err)
	}
	crashpoint.Hit("pool-remove:after-unmount")
	os.Remove(dir)
	if err := os.Remove(s.image(pool)); err != nil {
		return err
	}
	s.Log.Info("removed a pool", "backend", s.Kind, "pool", pool)
	return nil
}

// List lists the pools under Dir.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.Contains(n, ".tmp") {
			continue
		}
		if p, ok := strings.CutSuffix(n, ".img"); ok {
			seen[p] = true
		} else if e.Type()&fs.ModeSymlink != 0 {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Report is a pool report with the figures of the pool's filesystem: its
// size, what nobody can allocate any more (the filesystem's own reserve
// included, so 100 % means writes fail), and its inodes where it counts
// them. The caller adds the volumes.
func (s *Store) Report(pool string, rec *Record) (*backend.PoolReport, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.Path(pool)+"/", &st); err != nil {
		return nil, s.errorf(pool, "statfs: %w", err)
	}
	bs := int64(st.Bsize)
	size := int64(st.Blocks) * bs
	free := int64(st.Bavail) * bs
	used := size - free
	r := &backend.PoolReport{
		Name: pool, Backend: s.Kind,
		SizeBytes: size, UsedBytes: used,
		MetadataLabel: "inodes",
		WarnPercent:   rec.WarnPercent, RefusePercent: rec.RefusePercent,
		Scanned: time.Now(),
	}
	if size > 0 {
		r.DataPercent = 100 * float64(used) / float64(size)
	}
	if st.Files > 0 {
		r.MetadataPercent = 100 * float64(st.Files-st.Ffree) / float64(st.Files)
	} else {
		r.MetadataLabel = "none"
	}
	if free < 1<<20 {
		r.Health = "out of data space"
	}
	return r, nil
}

// FreeBytes is the pool filesystem's free space after a syncfs (which
// also waits for XFS's deferred inode frees); -1 when it cannot tell.
func (s *Store) FreeBytes(pool string) int64 {
	d, err := os.Open(s.Path(pool) + "/")
	if err != nil {
		return -1
	}
	defer d.Close()
	unix.Syncfs(int(d.Fd()))
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// WriteJSON writes v to path atomically (sidecars and records).
func WriteJSON(path string, v any) error { return writeJSON(path, v) }

// ReadJSON reads path into v.
func ReadJSON(path string, v any) error { return readJSON(path, v) }

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// RenameVolume is the end of a backend's Rename, the same for every
// backend that keeps a volume as a file or subvolume with a JSON sidecar:
// the sidecar is written under the new name first (writeNew), then the
// volume is renamed, never over another one, then the old sidecar goes
// and dir is synced. A crash leaves the old volume with a stray sidecar,
// or the new one with one; the backends' Sweep removes sidecars whose
// volume is gone.
func RenameVolume(oldName, newName, oldPath, newPath, oldSidecar, newSidecar, dir string, writeNew func() error) error {
	if err := writeNew(); err != nil {
		return fmt.Errorf("rename volume %s: %w", oldName, err)
	}
	err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_NOREPLACE)
	if err != nil {
		os.Remove(newSidecar)
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("rename volume %s to %s: %w", oldName, newName, backend.ErrExists)
		}
		return fmt.Errorf("rename volume %s to %s: %w", oldName, newName, err)
	}
	os.Remove(oldSidecar)
	return fsutil.SyncDir(dir)
}
