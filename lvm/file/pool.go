// Package file is the thin-pool backend for hosts without a volume group.
//
// A pool is a filesystem that can share extents between files (reflink):
// either a sparse XFS image with reflink=1 that thinroot creates and
// loop-mounts, or an existing directory on XFS or btrfs. A thin volume is a
// sparse image file holding a filesystem; a snapshot is a reflink clone of
// it (FICLONE), so it costs only metadata until either side is written;
// an active volume is its image attached to a loop device.
//
// On-disk layout under the state directory (the pools are lvm/imagepool's):
//
//	pools/<pool>.img                     the pool image (image pools)
//	pools/<pool>/                        its mount point, or a symlink to the directory (directory pools)
//	pools/<pool>/thinroot-pool.json      the pool's record
//	pools/<pool>/volumes/<name>.img      a thin volume
//	pools/<pool>/volumes/<name>.json     its sidecar (origin, created, size, tags)
//
// Everything the backend knows is in those files, so a restart rebuilds
// the picture by reading them, sysfs (attached loops) and the mount table.
// It imports lvm/backend, lvm/imagepool and internal helpers.
package file

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/imagepool"
)

// Kind is the backend's name in configs and stats.
const Kind = "file"

// Backend implements backend.Backend on reflink-capable filesystems.
type Backend struct {
	pools *imagepool.Store
	log   *slog.Logger
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
	return &Backend{log: log, pools: &imagepool.Store{
		Dir: filepath.Join(stateDir, "pools"), Kind: Kind, FSType: "xfs", MinSize: 320 << 20,
		Mkfs: mkfsXFS, CheckDir: CheckReflink, Log: log,
	}}
}

// mkfsXFS formats a pool image: mkfs.xfs formats a regular file directly,
// and reflink=1 is what makes snapshots cheap.
func mkfsXFS(ctx context.Context, image, label string) error {
	cmd := exec.CommandContext(ctx, "mkfs.xfs", "-q", "-f", "-m", "reflink=1", "-L", label, image)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.xfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Kind implements backend.Backend.
func (b *Backend) Kind() string { return Kind }

// Capabilities implements backend.Backend: volumes are images on loop
// devices, with a fixed virtual size.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{Block: true, FixedSize: true}
}

func (b *Backend) poolDir(pool string) string    { return b.pools.Path(pool) }
func (b *Backend) volumesDir(pool string) string { return b.pools.Volumes(pool) }

// open makes sure a pool is reachable and returns its record.
func (b *Backend) open(ctx context.Context, pool string) (*imagepool.Record, error) {
	return b.pools.Open(ctx, pool)
}

// CreatePool implements backend.Backend: an XFS image with reflink, or
// an existing directory on a filesystem that can clone files.
func (b *Backend) CreatePool(ctx context.Context, spec backend.PoolSpec) error {
	return b.pools.Create(ctx, spec)
}

// RemovePool implements backend.Backend.
func (b *Backend) RemovePool(ctx context.Context, pool string) error {
	return b.pools.Remove(ctx, pool, func() (int, error) {
		vols, err := b.listVolumes(pool)
		return len(vols), err
	})
}

// Pools implements backend.Backend.
func (b *Backend) Pools(ctx context.Context) ([]string, error) { return b.pools.List() }

// Scan reports the pool's usage (from statfs; metadata_percent is the
// share of the filesystem's inodes in use) and its volumes.
func (b *Backend) Scan(ctx context.Context, pool string) (*backend.PoolReport, error) {
	rec, err := b.open(ctx, pool)
	if err != nil {
		return nil, err
	}
	r, err := b.pools.Report(pool, rec)
	if err != nil {
		return nil, err
	}
	if r.Volumes, err = b.listVolumes(pool); err != nil {
		return nil, err
	}
	return r, nil
}
