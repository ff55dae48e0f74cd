// Package btrfs is the backend on btrfs subvolumes, for Fedora
// workstations and other hosts on btrfs: a pool is a btrfs filesystem
// (an image thinroot creates and loop-mounts, or an existing directory on
// btrfs), a config's base volume is a subvolume, snapshots are read-only
// subvolume snapshots and workdirs writable ones. Volumes are directories:
// no loop device, no mkfs, no fixed size; the Manager bind-mounts a
// workdir at mock's path. Volumes' usage comes from qgroups where quotas
// are enabled on the filesystem, the pool's from the filesystem itself.
//
// On-disk layout (the pools are lvm/imagepool's, under stateDir/btrfs):
//
//	btrfs/<pool>.img                      the pool image (image pools)
//	btrfs/<pool>/                         its mount point, or a symlink to the directory
//	btrfs/<pool>/volumes/<name>/          a volume: a subvolume
//	btrfs/<pool>/volumes/<name>.json      its sidecar (origin, created, tags)
//	btrfs/<pool>/volumes/.tmp-<name>/     a subvolume being made, .tmp-<name>.lock its writer's lock
//
// Everything the backend knows is in those files and the filesystem, so
// a restart rebuilds the picture by reading them. It imports lvm/backend,
// lvm/imagepool and internal helpers.
package btrfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/imagepool"
)

// Kind is the backend's name in configs and stats.
const Kind = "btrfs"

// Backend implements backend.Backend on btrfs.
type Backend struct {
	pools *imagepool.Store
	log   *slog.Logger
}

var (
	_ backend.Backend = (*Backend)(nil)
	_ backend.Sweeper = (*Backend)(nil)
)

func init() {
	backend.Register(backend.Kind{Name: Kind, Open: func(env backend.Env, _ map[string]string) (backend.Backend, error) {
		return New(env.StateDir, env.Log), nil
	}})
}

// New returns a backend keeping its pool images under stateDir/btrfs.
func New(stateDir string, log *slog.Logger) *Backend {
	if log == nil {
		log = slog.Default()
	}
	return &Backend{log: log, pools: &imagepool.Store{
		Dir: filepath.Join(stateDir, "btrfs"), Kind: Kind, FSType: "btrfs", MinSize: 256 << 20,
		Mkfs: mkfs, CheckDir: CheckBtrfs, Log: log,
		// The volumes are the buildroots' directories, world-writable
		// /tmp and all: only root goes through here (workdirs are
		// reached through their mounts at mock's paths).
		VolumesMode: 0o700,
	}}
}

// mkfs formats a pool image.
func mkfs(ctx context.Context, image, label string) error {
	cmd := exec.CommandContext(ctx, "mkfs.btrfs", "-q", "-f", "-L", label, image)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.btrfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CheckBtrfs tells whether dir is on btrfs, with a message that says what
// to do when it is not.
func CheckBtrfs(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Type != unix.BTRFS_SUPER_MAGIC {
		return fmt.Errorf("%s is not on btrfs (filesystem type %#x): use a directory on btrfs, or let thinroot create an image pool", dir, st.Type)
	}
	return nil
}

// Kind implements backend.Backend.
func (b *Backend) Kind() string { return Kind }

// Capabilities implements backend.Backend: volumes are directories that
// grow until the pool is full; snapshots are read-only.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{ReadOnlySnapshots: true}
}

// CreatePool implements backend.Backend: a btrfs image, or an existing
// directory on btrfs.
func (b *Backend) CreatePool(ctx context.Context, spec backend.PoolSpec) error {
	return b.pools.Create(ctx, spec)
}

// RemovePool implements backend.Backend.
func (b *Backend) RemovePool(ctx context.Context, pool string) error {
	return b.pools.Remove(ctx, pool, func() (int, error) {
		vols, err := b.list(pool)
		return len(vols), err
	})
}

// Pools implements backend.Backend.
func (b *Backend) Pools(ctx context.Context) ([]string, error) { return b.pools.List() }

// Scan implements backend.Backend: the pool's figures from the filesystem,
// its volumes from the volumes directory.
func (b *Backend) Scan(ctx context.Context, pool string) (*backend.PoolReport, error) {
	rec, err := b.pools.Open(ctx, pool)
	if err != nil {
		return nil, err
	}
	r, err := b.pools.Report(pool, rec)
	if err != nil {
		return nil, err
	}
	if r.Volumes, err = b.list(pool); err != nil {
		return nil, err
	}
	return r, nil
}

// errno maps what the kernel says to the backend's errors.
func errno(what string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s: %w: %w", what, backend.ErrNotFound, err)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s: %w: %w", what, backend.ErrExists, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%s: %w: %w", what, backend.ErrBusy, err)
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return fmt.Errorf("%s: %w: %w", what, backend.ErrPoolFull, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// openDir opens a directory for the ioctls.
func openDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}
