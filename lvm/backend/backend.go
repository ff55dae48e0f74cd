// Package backend says what a volume backend is: the interface every
// backend implements (lvm2, file, btrfs, and the memory backend tests
// use), the values it takes and returns, its errors, a description of what
// it can do (Capabilities), and the registry through which the Manager
// opens backends by name. It imports nothing of thinroot: package lvm (the
// Manager) and every backend import it, never the other way round.
package backend

import (
	"context"
	"errors"
	"time"
)

// Backend drives pools of one kind. It knows volumes by their names and
// nothing of mock's scheme, configs or mount points: the Manager does
// names, locking, the filesystem of block volumes and mounting.
//
// A backend keeps all of its state in what it manages (LVM metadata,
// image files with sidecars, subvolumes with sidecars), so Scan after a
// restart sees everything. Creations are atomic from a reader's point of
// view: a volume shows up in Scan only once it is complete.
type Backend interface {
	// Kind is the name the backend registered under ("file", "lvm2",
	// "btrfs", "memory").
	Kind() string
	// Capabilities says what kind of volumes the backend hands out.
	Capabilities() Capabilities

	// CreatePool makes a pool; ErrExists when it is already there.
	CreatePool(ctx context.Context, spec PoolSpec) error
	// RemovePool removes an empty pool; ErrNotEmpty when it has volumes.
	RemovePool(ctx context.Context, pool string) error
	// Pools lists the pools this backend can see.
	Pools(ctx context.Context) ([]string, error)

	// Scan reports a pool and every volume in it, ours or not, in one
	// pass. ErrNotFound when the pool does not exist.
	Scan(ctx context.Context, pool string) (*PoolReport, error)

	// Create makes an empty volume and activates it. size is its virtual
	// size for backends with Capabilities.FixedSize; others ignore it.
	Create(ctx context.Context, pool, name string, size int64) (*Volume, error)
	// Snapshot makes a snapshot of origin named name. With opts.Activate
	// the new volume is a writable one, active (Mount set) on return;
	// without, it is a snapshot to keep (read-only where the backend can).
	Snapshot(ctx context.Context, pool, origin, name string, opts SnapshotOptions) (*Volume, error)
	// Activate makes an existing volume mountable and says how (Mount).
	Activate(ctx context.Context, pool, name string) (*Volume, error)
	// Remove deletes an unmounted volume; ErrNotFound when it is gone.
	Remove(ctx context.Context, pool, name string) error
}

// Capabilities describe a backend's volumes, so that the Manager treats
// block and directory backends alike where it can and apart where it must.
type Capabilities struct {
	// Block volumes are block devices: the Manager makes a filesystem on
	// a new one (mkfs, with the config's filesystem and options) and
	// mounts the device. Otherwise a volume is a directory, ready to use
	// when made, which the Manager bind-mounts at mock's path.
	Block bool
	// FixedSize volumes have a virtual size, given when they are made.
	// Otherwise a volume grows until its pool is full.
	FixedSize bool
	// ReadOnlySnapshots are snapshots that cannot be written (a workdir
	// made from one is a writable snapshot of it).
	ReadOnlySnapshots bool
}

// Releaser is implemented by backends whose devices stay attached only
// while someone holds them (the file backend's autoclear loop devices).
// The Manager calls Release once the volume is mounted or no longer needed.
type Releaser interface {
	Release(v *Volume)
}

// Extender is implemented by backends whose pools can grow from free
// space around them (lvm2: the volume group). Extend fails wrapping
// ErrNoRoom when there is not room for step bytes.
type Extender interface {
	Extend(ctx context.Context, pool string, step int64) error
}

// Sweeper is implemented by backends that can leave temporaries behind
// when a process dies inside one of their calls (a half-written image or
// subvolume). The Manager calls Sweep when it opens a pool and when it
// finishes a dead process's operation on it; Sweep removes only what no
// live process holds.
type Sweeper interface {
	Sweep(ctx context.Context, pool string) error
}

// Errors backends return (wrapped, with the object they are about), and
// callers branch on with errors.Is.
var (
	ErrInvalidName = errors.New("invalid name")
	ErrExists      = errors.New("already exists")
	ErrNotFound    = errors.New("not found")
	ErrNotEmpty    = errors.New("has workdirs")
	ErrBusy        = errors.New("in use")
	ErrPoolFull    = errors.New("pool is full")
	ErrUnsupported = errors.New("not supported")
	// ErrNoRoom says a pool cannot grow: its volume group has no room.
	ErrNoRoom = errors.New("no room to grow the pool")
)

// SnapshotOptions tune Snapshot.
type SnapshotOptions struct {
	// Activate makes the new volume a writable, active one (a workdir).
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
	// Size of the pool's data space in bytes (file, btrfs: the image size;
	// ignored when Directory is set).
	Size int64
	// MetadataSize (lvm2 poolmetadatasize), 0 for the default.
	MetadataSize int64
	// Directory (file, btrfs) is an existing directory to use as the pool
	// instead of a new image.
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

// Find looks a volume up in a report (nil when r is nil or lacks it).
func (r *PoolReport) Find(name string) *Volume {
	if r == nil {
		return nil
	}
	for i := range r.Volumes {
		if r.Volumes[i].Name == name {
			return &r.Volumes[i]
		}
	}
	return nil
}

// Volume is a volume as the backend sees it.
type Volume struct {
	Name        string
	Pool        string
	Origin      string // the volume it was snapshotted from, "" for none
	VirtualSize int64
	// UsedBytes is space the volume holds in the pool (approximate; data
	// shared with other volumes counts for each of them; 0 when the
	// backend cannot tell).
	UsedBytes int64
	Created   time.Time
	Tags      []string
	Thin      bool // a volume of the pool (lvm2: a thin LV, not some other LV)
	Active    bool
	// Mount says how to mount the volume while it is active.
	Mount Mount
	// Handle is backend-private (e.g. an open loop device that keeps an
	// autoclear device alive until it is mounted).
	Handle any `json:"-"`
}

// Mount is what to mount to reach an active volume's files, in the manner
// of containerd's mount.Mount. A block backend hands out its device with
// an empty Type (the filesystem on it is the one the Manager made); a
// directory backend hands out a directory with Type "bind".
type Mount struct {
	Type    string   `json:"type,omitempty"`
	Source  string   `json:"source,omitempty"`
	Options []string `json:"options,omitempty"`
}

// Bind is the Mount Type of a directory to bind-mount.
const Bind = "bind"

// Renamer is implemented by backends that can give a volume another name
// in place, atomically and without touching its data or its activation
// (an attached device stays attached, a mounted volume stays mounted).
// The Manager hands a warm spare over as a workdir that way. Rename fails
// wrapping ErrExists when newName is taken and ErrNotFound when oldName
// is gone.
type Renamer interface {
	Rename(ctx context.Context, pool, oldName, newName string) error
}
