package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/imagepool"
)

// sidecar is <lv>.json beside <lv>.img.
type sidecar struct {
	Name        string    `json:"name"`
	Origin      string    `json:"origin,omitempty"`
	VirtualSize int64     `json:"virtual_size"`
	Created     time.Time `json:"created"`
	Tags        []string  `json:"tags,omitempty"`
}

// A volume is published when its <lv>.img exists; the sidecar is written
// before the image is renamed into place. Work in progress lives in
// .tmp-<lv>.img, locked by its writer, and is swept once its writer is gone.
func (b *Backend) imgPath(pool, name string) string {
	return filepath.Join(b.volumesDir(pool), name+".img")
}
func (b *Backend) sidecarPath(pool, name string) string {
	return filepath.Join(b.volumesDir(pool), name+".json")
}
func (b *Backend) tmpPath(pool, name string) string {
	return filepath.Join(b.volumesDir(pool), ".tmp-"+name+".img")
}

func writeJSON(path string, v any) error { return imagepool.WriteJSON(path, v) }
func readJSON(path string, v any) error  { return imagepool.ReadJSON(path, v) }

// listVolumes reads the volumes directory. Work in progress (temporary
// images and sidecars) is not listed; Sweep removes what dead writers left.
func (b *Backend) listVolumes(pool string) ([]backend.Volume, error) {
	dir := b.volumesDir(pool)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file pool %s: %w", pool, err)
	}
	attached := loop.Attached()
	var vols []backend.Volume
	for _, e := range ents {
		n := e.Name()
		name, ok := strings.CutSuffix(n, ".img")
		if !ok || strings.HasPrefix(n, ".") {
			continue
		}
		v := backend.Volume{Name: name, Pool: pool, Thin: true}
		var sc sidecar
		if err := readJSON(b.sidecarPath(pool, name), &sc); err == nil {
			v.Origin, v.VirtualSize, v.Created, v.Tags = sc.Origin, sc.VirtualSize, sc.Created, sc.Tags
		}
		if info, err := e.Info(); err == nil {
			if v.VirtualSize == 0 {
				v.VirtualSize = info.Size()
			}
			if v.Created.IsZero() {
				v.Created = info.ModTime()
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				v.UsedBytes = st.Blocks * 512
			}
		}
		if dev, ok := attached[filepath.Join(dir, n)]; ok {
			v.Active, v.Mount = true, backend.Mount{Source: dev}
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	return vols, nil
}

// Sweep implements backend.Sweeper: it removes the temporary images and
// sidecars writers that died left, and sidecars whose image never got
// published. A live writer keeps its temporary locked, so this never
// races one.
func (b *Backend) Sweep(ctx context.Context, pool string) error {
	if _, err := b.open(ctx, pool); err != nil {
		return err
	}
	dir := b.volumesDir(pool)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	images := map[string]bool{}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") {
			b.sweepTemp(filepath.Join(dir, n))
		} else if vol, ok := sidecarTemp(n); ok {
			// A sidecar being written (fsutil.WriteFileAtomic) while its
			// volume's temporary image is locked by its writer; with that
			// lock free or the image gone, the writer died mid-write.
			if _, held := lock.HolderOf(b.tmpPath(pool, vol), true); !held {
				os.Remove(filepath.Join(dir, n))
			}
		} else if name, ok := strings.CutSuffix(n, ".img"); ok {
			images[name] = true
		}
	}
	// A writer publishes by renaming its temporary onto the image after
	// writing the sidecar, so at every moment one of the two exists: look
	// at the temporary first, then at the image, both now (the listing
	// above may predate the rename).
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") || images[name] {
			continue
		}
		if _, err := os.Stat(b.tmpPath(pool, name)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if _, err := os.Stat(b.imgPath(pool, name)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
	return nil
}

// sidecarTemp tells whether n is the temporary of <lv>.json being
// written, and for which volume.
func sidecarTemp(n string) (string, bool) {
	rest, ok := strings.CutPrefix(n, ".")
	if !ok {
		return "", false
	}
	i := strings.Index(rest, ".json.tmp-")
	if i <= 0 {
		return "", false
	}
	return rest[:i], true
}

// sweepTemp removes a temporary image whose writer is gone (its lock is
// free), and tells whether the path is free now. A live writer keeps it
// locked, so this never races one.
func (b *Backend) sweepTemp(path string) bool {
	h, err := lock.TryLock(path, true)
	if err != nil || h == nil {
		return false
	}
	defer h.Release()
	b.log.Info("removing abandoned temporary volume", "path", path)
	os.Remove(path)
	return true
}

// newTemp creates a temporary image for name, locked through the returned
// file itself, so the lock lasts exactly as long as the caller keeps the
// file open (until after publish). A sweeper can remove the path between
// our create and our lock; then the path no longer names our file, and we
// start over rather than fill an unlinked file.
func (b *Backend) newTemp(pool, name string) (*os.File, error) {
	tmp := b.tmpPath(pool, name)
	for attempt := 0; attempt < 8; attempt++ {
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, fs.ErrExist) {
			// Maybe abandoned; if a live writer holds it this volume is
			// being made right now.
			if !b.sweepTemp(tmp) {
				return nil, fmt.Errorf("volume %s is being created: %w", name, backend.ErrExists)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		ok, err := lock.TryLockOpen(f)
		if err != nil || !ok {
			f.Close()
			continue
		}
		if sameFile(f, tmp) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("create temporary %s: lost it to a concurrent sweep repeatedly", tmp)
}

// sameFile tells whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// publish writes the sidecar and renames the temporary into place.
func (b *Backend) publish(pool string, sc sidecar) error {
	if err := writeJSON(b.sidecarPath(pool, sc.Name), sc); err != nil {
		return err
	}
	if err := os.Rename(b.tmpPath(pool, sc.Name), b.imgPath(pool, sc.Name)); err != nil {
		os.Remove(b.sidecarPath(pool, sc.Name))
		return err
	}
	return fsutil.SyncDir(b.volumesDir(pool))
}

func (b *Backend) exists(pool, name string) bool {
	_, err := os.Stat(b.imgPath(pool, name))
	return err == nil
}

// Create implements backend.Backend: a sparse image of the virtual size,
// attached to a loop device.
func (b *Backend) Create(ctx context.Context, pool, name string, virtualSize int64) (*backend.Volume, error) {
	if _, err := b.open(ctx, pool); err != nil {
		return nil, err
	}
	if b.exists(pool, name) {
		return nil, fmt.Errorf("volume %s: %w", name, backend.ErrExists)
	}
	f, err := b.newTemp(pool, name)
	if err != nil {
		return nil, err
	}
	// f holds the temporary's lock until the volume is published.
	defer f.Close()
	if err := f.Truncate(virtualSize); err != nil {
		os.Remove(b.tmpPath(pool, name))
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	sc := sidecar{Name: name, VirtualSize: virtualSize, Created: time.Now().UTC()}
	if err := b.publish(pool, sc); err != nil {
		os.Remove(b.tmpPath(pool, name))
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	f.Close()
	return b.Activate(ctx, pool, name)
}

// Snapshot clones origin's image with FICLONE. If the origin is mounted
// its filesystem is frozen for the clone, so the copy is consistent.
func (b *Backend) Snapshot(ctx context.Context, pool, origin, name string, opts backend.SnapshotOptions) (*backend.Volume, error) {
	if _, err := b.open(ctx, pool); err != nil {
		return nil, err
	}
	if !b.exists(pool, origin) {
		return nil, fmt.Errorf("snapshot origin %s: %w", origin, backend.ErrNotFound)
	}
	if b.exists(pool, name) {
		return nil, fmt.Errorf("volume %s: %w", name, backend.ErrExists)
	}
	var osc sidecar
	if err := readJSON(b.sidecarPath(pool, origin), &osc); err != nil {
		return nil, fmt.Errorf("snapshot origin %s: %w", origin, err)
	}
	dst, err := b.newTemp(pool, name)
	if err != nil {
		return nil, err
	}
	// dst holds the temporary's lock until the volume is published.
	defer dst.Close()
	fail := func(err error) (*backend.Volume, error) {
		os.Remove(b.tmpPath(pool, name))
		return nil, fmt.Errorf("snapshot %s of %s: %w", name, origin, err)
	}
	src, err := os.Open(b.imgPath(pool, origin))
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	if opts.OriginMount != "" {
		thaw, err := mount.Freeze(opts.OriginMount)
		if err != nil {
			return fail(err)
		}
		crashpoint.Hit("snapshot:while-frozen")
		err = unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
		thaw()
		if err != nil {
			return fail(fmt.Errorf("FICLONE: %w", err))
		}
	} else if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err != nil {
		return fail(fmt.Errorf("FICLONE: %w", err))
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	sc := sidecar{Name: name, Origin: origin, VirtualSize: osc.VirtualSize, Created: time.Now().UTC(), Tags: opts.Tags}
	if err := b.publish(pool, sc); err != nil {
		os.Remove(b.tmpPath(pool, name))
		return nil, fmt.Errorf("snapshot %s of %s: %w", name, origin, err)
	}
	dst.Close()
	if opts.Activate {
		return b.Activate(ctx, pool, name)
	}
	return b.volume(pool, name)
}

// volume describes one volume from its own files, without listing the
// pool: an operation on one volume costs the same with 10 or 1000 others.
func (b *Backend) volume(pool, name string) (*backend.Volume, error) {
	img := b.imgPath(pool, name)
	info, err := os.Stat(img)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("volume %s: %w", name, backend.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v := backend.Volume{Name: name, Pool: pool, Thin: true, VirtualSize: info.Size(), Created: info.ModTime()}
	var sc sidecar
	if err := readJSON(b.sidecarPath(pool, name), &sc); err == nil {
		v.Origin, v.Tags = sc.Origin, sc.Tags
		if sc.VirtualSize > 0 {
			v.VirtualSize = sc.VirtualSize
		}
		if !sc.Created.IsZero() {
			v.Created = sc.Created
		}
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		v.UsedBytes = st.Blocks * 512
	}
	return &v, nil
}

// Activate attaches the image to a loop device (autoclear). The returned
// volume holds the device open until Release; mount it before that.
func (b *Backend) Activate(ctx context.Context, pool, name string) (*backend.Volume, error) {
	v, err := b.volume(pool, name)
	if err != nil {
		return nil, err
	}
	dev, err := loop.Attach(b.imgPath(pool, name), false)
	if err != nil {
		return nil, fmt.Errorf("activate %s: %w", name, err)
	}
	v.Active, v.Mount, v.Handle = true, backend.Mount{Source: dev.Path}, dev
	return v, nil
}

// Release drops the hold Activate took on the loop device.
func (b *Backend) Release(v *backend.Volume) {
	if d, ok := v.Handle.(*loop.Device); ok {
		d.Close()
		v.Handle = nil
	}
}

// Remove deletes a volume's image and sidecar. The Manager unmounts first;
// a loop device still attached keeps the data until it detaches.
func (b *Backend) Remove(ctx context.Context, pool, name string) error {
	if _, err := b.open(ctx, pool); err != nil {
		return err
	}
	img := b.imgPath(pool, name)
	// After an unmount the kernel detaches an autoclear loop device in
	// the background; the pool gets the space back only once it has, so
	// wait for that (briefly) before unlinking.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, attached := loop.Attached()[img]; !attached {
			break
		}
	}
	own := ownBytes(img)
	free0 := b.freeBytes(pool)
	err := os.Remove(img)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("volume %s: %w", name, backend.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	os.Remove(b.sidecarPath(pool, name))
	if err := fsutil.SyncDir(b.volumesDir(pool)); err != nil {
		return err
	}
	// The kernel lets go of a detached loop device's file, and XFS frees an
	// unlinked file's blocks, in the background. Wait (a bounded time) until
	// the image's own blocks are free again, so the pool's figures are
	// right when Remove returns and a full pool is usable at once.
	if own > 1<<20 && free0 >= 0 {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if b.freeBytes(pool)-free0 >= own-own/10-(1<<20) {
				break
			}
		}
	}
	return nil
}

// freeBytes is the pool filesystem's free space after a syncfs (which
// also waits for XFS's deferred inode frees).
func (b *Backend) freeBytes(pool string) int64 { return b.pools.FreeBytes(pool) }

// CheckReflink tells whether dir's filesystem can clone files, with a
// message that says what to do when it cannot.
func CheckReflink(dir string) error {
	a, err := os.CreateTemp(dir, ".reflink-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(a.Name())
	defer a.Close()
	if _, err := a.Write(make([]byte, 4096)); err != nil {
		return err
	}
	c, err := os.CreateTemp(dir, ".reflink-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(c.Name())
	defer c.Close()
	if err := unix.IoctlFileClone(int(c.Fd()), int(a.Fd())); err != nil {
		fstype := "this filesystem"
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil {
			fstype = fsName(st.Type)
		}
		return fmt.Errorf("%s is on %s, which cannot clone files (FICLONE: %v); use a directory on XFS with reflink=1 or btrfs, or let thinroot create an image pool", dir, fstype, err)
	}
	return nil
}

func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs (without reflink)"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	}
	return fmt.Sprintf("a filesystem of type %#x", magic)
}

// Rename implements backend.Renamer: the sidecar under the new name
// first, then the image (never over another one), then the old sidecar
// goes. An attached loop device follows its file. A crash leaves either
// the old volume with a stray sidecar or the new one with one; Sweep
// removes sidecars without an image.
func (b *Backend) Rename(ctx context.Context, pool, oldName, newName string) error {
	if _, err := b.open(ctx, pool); err != nil {
		return err
	}
	if !b.exists(pool, oldName) {
		return fmt.Errorf("rename volume %s: %w", oldName, backend.ErrNotFound)
	}
	if b.exists(pool, newName) {
		return fmt.Errorf("rename volume %s to %s: %w", oldName, newName, backend.ErrExists)
	}
	var sc sidecar
	if err := readJSON(b.sidecarPath(pool, oldName), &sc); err != nil {
		return fmt.Errorf("rename volume %s: %w", oldName, err)
	}
	sc.Name = newName
	return imagepool.RenameVolume(oldName, newName, b.imgPath(pool, oldName), b.imgPath(pool, newName),
		b.sidecarPath(pool, oldName), b.sidecarPath(pool, newName), b.volumesDir(pool),
		func() error { return writeJSON(b.sidecarPath(pool, newName), sc) })
}
