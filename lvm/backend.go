package lvm

import (
	"context"
	"errors"
	"time"
)

// Backend drives thin pools of one kind. It knows volumes by their LV names
// and nothing of mock's scheme, configs or mounts: the Manager does names,
// locking, mkfs and mount on the block devices a backend hands out.
//
// A backend keeps all of its state in what it manages (LVM metadata, or
// image files with sidecars), so Scan after a restart sees everything.
// Create operations are atomic from a reader's point of view: a volume shows
// up in Scan only once its data is complete.
type Backend interface {
	// Kind is "file" or "lvm2".
	Kind() string

	// CreatePool makes the thin pool; ErrExists when it is already there.
	CreatePool(ctx context.Context, spec PoolSpec) error
	// RemovePool removes an empty pool; ErrNotEmpty when it has volumes.
	RemovePool(ctx context.Context, pool string) error
	// Pools lists the pools this backend can see.
	Pools(ctx context.Context) ([]string, error)

	// Scan reports a pool and every thin volume in it, ours or not, in one
	// pass. ErrNotFound when the pool does not exist.
	Scan(ctx context.Context, pool string) (*PoolReport, error)

	// CreateThin makes an empty thin volume of the given virtual size and
	// activates it.
	CreateThin(ctx context.Context, pool, name string, virtualSize int64) (*Volume, error)
	// Snapshot makes a thin snapshot of origin named name. With
	// opts.Activate the new volume is active (Device set) on return.
	Snapshot(ctx context.Context, pool, origin, name string, opts SnapshotOptions) (*Volume, error)
	// Activate makes a volume's block device available.
	Activate(ctx context.Context, pool, name string) (*Volume, error)
	// Remove deletes an unmounted volume; ErrNotFound when it is gone.
	Remove(ctx context.Context, pool, name string) error
}

// Releaser is implemented by backends whose devices stay attached only
// while someone holds them (the file backend's autoclear loop devices).
// The Manager calls Release once the device is mounted or no longer needed.
type Releaser interface {
	Release(v *Volume)
}

// Extender is implemented by backends whose pools can grow from free
// space around them (lvm2: the volume group). Extend fails wrapping
// ErrNoRoom when there is not room for step bytes.
type Extender interface {
	Extend(ctx context.Context, pool string, step int64) error
}

// ErrNoRoom says a pool cannot grow: its volume group has no room.
var ErrNoRoom = errors.New("no room to grow the pool")

// SnapshotOptions tune Snapshot.
type SnapshotOptions struct {
	Activate bool
	// OriginMount is where the origin is mounted, if it is. Backends whose
	// snapshot does not quiesce the filesystem by itself freeze it there.
	OriginMount string
	// Tags are recorded with the new volume.
	Tags []string
}

// PoolSpec says how to make a pool.
type PoolSpec struct {
	Name string
	// Size of the pool's data space in bytes (file: the image size, ignored
	// when Directory is set).
	Size int64
	// MetadataSize (lvm2 poolmetadatasize), 0 for the default.
	MetadataSize int64
	// Directory (file backend) is an existing directory on a reflink-capable
	// filesystem to use instead of a new image.
	Directory string
	// WarnPercent and RefusePercent are the thresholds recorded with the
	// pool; 0 means the defaults.
	WarnPercent, RefusePercent float64
}

// Default thresholds (mock warns at 75 % and refuses at 90 %).
const (
	DefaultWarnPercent   = 75
	DefaultRefusePercent = 90
)

// PoolReport is one pass over a pool.
type PoolReport struct {
	Name        string
	Backend     string
	SizeBytes   int64
	UsedBytes   int64
	DataPercent float64
	// MetadataPercent is thin metadata use for lvm2; for the file backend
	// it is the share of the pool filesystem's inodes in use, the closest
	// thing it has (MetadataLabel says which).
	MetadataPercent float64
	MetadataLabel   string
	// Health is "" when the backend sees nothing wrong, else a short
	// reason ("out of data space", "metadata read-only", "failed").
	Health string
	// WarnPercent and RefusePercent as recorded with the pool.
	WarnPercent, RefusePercent float64
	Volumes                    []Volume
	Scanned                    time.Time
}

// Volume is a thin volume as the backend sees it.
type Volume struct {
	Name        string
	Pool        string
	Origin      string // LV it was snapshotted from, "" for none
	VirtualSize int64
	// UsedBytes is space the volume holds in the pool (approximate; data
	// shared with other volumes counts for each of them).
	UsedBytes int64
	Created   time.Time
	Tags      []string
	Thin      bool // a thin volume of the pool (not some other LV)
	Active    bool
	Device    string // block device path when active
	// Handle is backend-private (e.g. an open loop device that keeps an
	// autoclear device alive until it is mounted).
	Handle any `json:"-"`
}
