// Package file is the thin-pool backend for hosts without a volume group.
//
// A pool is a filesystem that can share extents between files (reflink):
// either a sparse XFS image with reflink=1 that thinroot creates and
// loop-mounts, or an existing directory on XFS or btrfs. A thin volume is a
// sparse image file holding a filesystem; a snapshot is a reflink clone of
// it (FICLONE), so it costs only metadata until either side is written;
// an active volume is its image attached to a loop device.
//
// On-disk layout under the state directory:
//
//	pools/<pool>.img           the pool image (image pools)
//	pools/<pool>/              its mount point, or a symlink to the directory (directory pools)
//	pools/<pool>/thinroot-pool.json      the pool's record
//	pools/<pool>/volumes/<lv>.img        a thin volume
//	pools/<pool>/volumes/<lv>.json       its sidecar (origin, created, size, tags)
//
// Everything the backend knows is in those files, so a restart rebuilds
// the picture by reading them, sysfs (attached loops) and the mount table.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
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

// Kind is the backend's name in configs and stats.
const Kind = "file"

const poolRecordName = "thinroot-pool.json"

// Backend implements backend.Backend on reflink-capable filesystems.
type Backend struct {
	stateDir string
	log      *slog.Logger
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Releaser = (*Backend)(nil)
	_ backend.Sweeper  = (*Backend)(nil)
)

func init() {
	backend.Register(backend.Kind{Name: Kind, Open: func(env backend.Env, _ map[string]string) (backend.Backend, error) {
		return New(env.StateDir, env.Log), nil
	}})
}

// New returns a backend keeping its pools under stateDir/pools.
func New(stateDir string, log *slog.Logger) *Backend {
	if log == nil {
		log = slog.Default()
	}
	return &Backend{stateDir: stateDir, log: log}
}

// Kind implements backend.Backend.
func (b *Backend) Kind() string { return Kind }

// Capabilities implements backend.Backend: volumes are images on loop
// devices, with a fixed virtual size.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{Block: true, FixedSize: true}
}

func (b *Backend) poolsDir() string             { return filepath.Join(b.stateDir, "pools") }
func (b *Backend) imagePath(pool string) string { return filepath.Join(b.poolsDir(), pool+".img") }

// poolDir is the path through which the pool's files are reached: the
// image's mount point or the symlink to a directory pool.
func (b *Backend) poolDir(pool string) string { return filepath.Join(b.poolsDir(), pool) }
func (b *Backend) volumesDir(pool string) string {
	return filepath.Join(b.poolDir(pool), "volumes")
}

// poolRecord is thinroot-pool.json.
type poolRecord struct {
	Name          string    `json:"name"`
	Kind          string    `json:"kind"` // "image" or "directory"
	Directory     string    `json:"directory,omitempty"`
	Created       time.Time `json:"created"`
	WarnPercent   float64   `json:"warn_percent"`
	RefusePercent float64   `json:"refuse_percent"`
}

// lockPool serializes pool creation, mounting and removal between
// processes sharing the state directory.
func (b *Backend) lockPool(ctx context.Context, pool string) (*lock.Held, error) {
	if err := os.MkdirAll(b.poolsDir(), 0o755); err != nil {
		return nil, err
	}
	return lock.Lock(ctx, filepath.Join(b.poolsDir(), "."+pool+".lock"), true, func(lock.Holder) {
		b.log.Info("waiting for file pool lock", "pool", pool)
	})
}

// kindOf tells how a pool exists on disk: "image", "directory" or "".
func (b *Backend) kindOf(pool string) string {
	if fi, err := os.Lstat(b.poolDir(pool)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "directory"
	}
	if _, err := os.Stat(b.imagePath(pool)); err == nil {
		return "image"
	}
	return ""
}

// CreatePool creates an image pool or adopts a directory.
func (b *Backend) CreatePool(ctx context.Context, spec backend.PoolSpec) error {
	if err := mock.ValidatePool(spec.Name); err != nil {
		return err
	}
	l, err := b.lockPool(ctx, spec.Name)
	if err != nil {
		return err
	}
	defer l.Release()
	if b.kindOf(spec.Name) != "" {
		return fmt.Errorf("file pool %s: %w", spec.Name, backend.ErrExists)
	}
	rec := poolRecord{Name: spec.Name, Created: time.Now().UTC(),
		WarnPercent: spec.WarnPercent, RefusePercent: spec.RefusePercent}
	if rec.WarnPercent == 0 {
		rec.WarnPercent = backend.DefaultWarnPercent
	}
	if rec.RefusePercent == 0 {
		rec.RefusePercent = backend.DefaultRefusePercent
	}
	if spec.Directory != "" {
		return b.adoptDirectory(spec, rec)
	}
	return b.createImage(ctx, spec, rec)
}

func (b *Backend) adoptDirectory(spec backend.PoolSpec, rec poolRecord) error {
	dir, err := filepath.Abs(spec.Directory)
	if err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("file pool %s: %w", spec.Name, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("file pool %s: %s is not a directory", spec.Name, dir)
	}
	if err := CheckReflink(dir); err != nil {
		return fmt.Errorf("file pool %s: %w", spec.Name, err)
	}
	rec.Kind, rec.Directory = "directory", dir
	if err := os.MkdirAll(filepath.Join(dir, "volumes"), 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, poolRecordName), rec); err != nil {
		return err
	}
	// Publish by renaming a symlink into place.
	tmp := b.poolDir(spec.Name) + ".tmp-link"
	os.Remove(tmp)
	if err := os.Symlink(dir, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, b.poolDir(spec.Name)); err != nil {
		os.Remove(tmp)
		return err
	}
	b.log.Info("adopted directory as file pool", "pool", spec.Name, "dir", dir)
	return fsutil.SyncDir(b.poolsDir())
}

func (b *Backend) createImage(ctx context.Context, spec backend.PoolSpec, rec poolRecord) error {
	if spec.Size < 320<<20 {
		return fmt.Errorf("file pool %s: size %d bytes is too small: an XFS pool image needs at least 320 MiB", spec.Name, spec.Size)
	}
	img := b.imagePath(spec.Name)
	tmp := img + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("file pool %s: %w", spec.Name, err)
	}
	err = f.Truncate(spec.Size)
	f.Close()
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file pool %s: size the image: %w", spec.Name, err)
	}
	// mkfs.xfs formats a regular file directly; reflink=1 is what makes
	// snapshots cheap.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), "mkfs.xfs", "-q", "-f", "-m", "reflink=1", "-L", labelFor(spec.Name), tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file pool %s: mkfs.xfs: %v: %s", spec.Name, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, img); err != nil {
		os.Remove(tmp)
		return err
	}
	rec.Kind = "image"
	crashpoint.Hit("pool-create:after-image")
	if err := b.mountImage(spec.Name); err != nil {
		return err
	}
	crashpoint.Hit("pool-create:after-mount")
	if err := os.MkdirAll(b.volumesDir(spec.Name), 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(b.poolDir(spec.Name), poolRecordName), rec); err != nil {
		return err
	}
	b.log.Info("created file pool", "pool", spec.Name, "image", img, "size", spec.Size)
	return nil
}

// labelFor makes an XFS label (at most 12 bytes) for a pool.
func labelFor(pool string) string {
	l := "tr-" + pool
	if len(l) > 12 {
		l = l[:12]
	}
	return l
}

// mountImage attaches and mounts an image pool if it is not mounted yet
// (after a reboot, or right after creation). Caller holds the pool lock.
func (b *Backend) mountImage(pool string) error {
	dir := b.poolDir(pool)
	if ok, err := mount.IsMountpoint(dir); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dev, err := loop.Attach(b.imagePath(pool), false)
	if err != nil {
		return fmt.Errorf("file pool %s: %w", pool, err)
	}
	defer dev.Close()
	if err := mount.Device(dev.Path, dir, "xfs", "noatime"); err != nil {
		return fmt.Errorf("file pool %s: %w", pool, err)
	}
	return nil
}

// open makes sure a pool is reachable and returns its record.
func (b *Backend) open(ctx context.Context, pool string) (*poolRecord, error) {
	switch b.kindOf(pool) {
	case "":
		return nil, fmt.Errorf("file pool %s: %w", pool, backend.ErrNotFound)
	case "image":
		if ok, err := mount.IsMountpoint(b.poolDir(pool)); err != nil {
			return nil, err
		} else if !ok {
			l, err := b.lockPool(ctx, pool)
			if err != nil {
				return nil, err
			}
			err = b.mountImage(pool)
			l.Release()
			if err != nil {
				return nil, err
			}
		}
	}
	var rec poolRecord
	err := readJSON(filepath.Join(b.poolDir(pool), poolRecordName), &rec)
	if errors.Is(err, fs.ErrNotExist) {
		// Another process is creating the pool (it holds the pool lock
		// until its record is written): wait for it, then read again.
		l, lerr := b.lockPool(ctx, pool)
		if lerr != nil {
			return nil, lerr
		}
		err = readJSON(filepath.Join(b.poolDir(pool), poolRecordName), &rec)
		if errors.Is(err, fs.ErrNotExist) && b.kindOf(pool) == "image" {
			// The lock is ours and there is still no record: its creator
			// died half way. The pool was never published; undo it so the
			// next create starts clean.
			err = b.undoHalfMade(pool)
		}
		l.Release()
	}
	if err != nil {
		return nil, fmt.Errorf("file pool %s: %w", pool, err)
	}
	return &rec, nil
}

// undoHalfMade removes an image pool whose creator died before writing its
// record: unmount, delete the image. A pool that holds volumes is never
// touched (its record was lost some other way). Caller holds the pool lock.
func (b *Backend) undoHalfMade(pool string) error {
	dir := b.poolDir(pool)
	if ents, _ := os.ReadDir(filepath.Join(dir, "volumes")); len(ents) > 0 {
		return fmt.Errorf("file pool %s: %s is missing but the pool holds %d volume files; restore the record by hand",
			pool, poolRecordName, len(ents))
	}
	b.log.Warn("removing a file pool whose creation was interrupted", "pool", pool)
	if err := mount.Unmount(dir, false); err != nil {
		return fmt.Errorf("file pool %s: undo an interrupted creation: %w", pool, err)
	}
	os.Remove(dir)
	if err := os.Remove(b.imagePath(pool)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file pool %s: undo an interrupted creation: %w", pool, err)
	}
	fsutil.SyncDir(b.poolsDir())
	return fmt.Errorf("file pool %s: its creation was interrupted: %w", pool, backend.ErrNotFound)
}

// RemovePool removes an empty pool: unmount and delete the image, or forget
// the directory (its files stay, minus ours).
func (b *Backend) RemovePool(ctx context.Context, pool string) error {
	rec, err := b.open(ctx, pool)
	if err != nil {
		return err
	}
	l, err := b.lockPool(ctx, pool)
	if err != nil {
		return err
	}
	defer l.Release()
	vols, err := b.listVolumes(pool)
	if err != nil {
		return err
	}
	if len(vols) > 0 {
		return fmt.Errorf("file pool %s has %d volumes: %w", pool, len(vols), backend.ErrNotEmpty)
	}
	dir := b.poolDir(pool)
	if rec.Kind == "directory" {
		os.Remove(filepath.Join(dir, "volumes"))
		os.Remove(filepath.Join(dir, poolRecordName))
		return os.Remove(dir)
	}
	if err := mount.Unmount(dir, false); err != nil {
		return fmt.Errorf("file pool %s: %w", pool, err)
	}
	crashpoint.Hit("pool-remove:after-unmount")
	os.Remove(dir)
	if err := os.Remove(b.imagePath(pool)); err != nil {
		return err
	}
	b.log.Info("removed file pool", "pool", pool)
	return nil
}

// Pools lists pools under the state directory.
func (b *Backend) Pools(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(b.poolsDir())
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

// Scan reports the pool's usage and its volumes.
func (b *Backend) Scan(ctx context.Context, pool string) (*backend.PoolReport, error) {
	rec, err := b.open(ctx, pool)
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(b.poolDir(pool)+"/", &st); err != nil {
		return nil, fmt.Errorf("file pool %s: statfs: %w", pool, err)
	}
	bs := int64(st.Bsize)
	size := int64(st.Blocks) * bs
	free := int64(st.Bavail) * bs
	// Used counts what nobody can allocate any more, including the
	// filesystem's own reserve, so 100 % means writes fail.
	used := size - free
	r := &backend.PoolReport{
		Name: pool, Backend: Kind,
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
	}
	if free < 1<<20 {
		r.Health = "out of data space"
	}
	vols, err := b.listVolumes(pool)
	if err != nil {
		return nil, err
	}
	r.Volumes = vols
	return r, nil
}
