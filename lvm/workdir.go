package lvm

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// CreateWorkdir clones snapshot snap of config root into a working volume
// for unique-ext ext and mounts it at the config's chroot path for ext
// ("" snap: ext's current snapshot). It returns only when the workdir
// can be entered. Once the clone starts it runs to the end even if ctx is
// cancelled; if the process dies half way the next recovery removes what
// was made.
func (m *Manager) CreateWorkdir(ctx context.Context, root, snap, ext string) (*WorkdirState, error) {
	c, err := m.opConfig(root)
	if err != nil {
		return nil, err
	}
	if snap != "" {
		if err := mock.ValidateSnapshot(root, snap); err != nil {
			return nil, err
		}
	}
	if err := mock.ValidateExt(root, ext); err != nil {
		return nil, err
	}
	unlockShared, err := m.lockShared(ctx, c)
	if err != nil {
		return nil, err
	}
	defer unlockShared()
	var w *WorkdirState
	err = m.do(ctx, root, lockCached, func(o *op) error {
		w, err = o.createWorkdir(snap, ext)
		return err
	})
	return w, err
}

func (o *op) createWorkdir(snap, ext string) (*WorkdirState, error) {
	c, root := o.c, o.c.Root
	if err := o.ready(); err != nil {
		return nil, err
	}
	if snap == "" {
		// The ext's current snapshot as it is now, under the lock.
		var err error
		if snap, err = o.m.Current(root, ext); err != nil {
			return nil, err
		}
	}
	vol := mock.WorkdirVolume(root, ext)
	if o.r.Find(vol) != nil {
		return nil, exists("workdir", root+"."+ext)
	}
	snapVol := mock.SnapshotVolume(root, snap)
	if o.r.Find(snapVol) == nil {
		return nil, notFound("snapshot", root+"/"+snap)
	}
	if err := o.m.ensureSpace(o.ctx, c, o.be, o.r); err != nil {
		// Spares are the first to make room for a user's volume.
		if !errors.Is(err, ErrPoolFull) || !o.m.dropPoolSpares(o.mctx, c.Pool) {
			return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
		}
		if o.r, err = o.m.rescan(o.ctx, c.Pool); err != nil {
			return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
		}
		if err := o.m.ensureSpace(o.ctx, c, o.be, o.r); err != nil {
			return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
		}
	}
	target := c.ChrootDir(ext)
	if o.m.isMounted(target) {
		// Another process made this workdir since our last scan (or
		// something else sits on its mount point): either way it exists.
		return nil, fmt.Errorf("create workdir %s.%s: %s is already mounted: %w", root, ext, target, ErrExists)
	}
	if w, ok := o.takeSpare(snap, ext, vol, target); ok {
		return w, nil
	}
	err := o.begin(journal.Intent{Op: journal.WorkdirCreate, Volumes: []string{vol}, Mounts: []string{target},
		Records: []journal.Record{o.record(ext, snapVol)}})
	if err != nil {
		return nil, err
	}
	crashpoint.Hit("workdir-create:before-clone")
	v, err := o.be.Snapshot(o.mctx, c.Pool, snapVol, vol, backend.SnapshotOptions{Activate: true})
	if err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	crashpoint.Hit("workdir-create:after-clone")
	err = o.m.mountVolume(c, o.be, v, target)
	release(o.be, v)
	if err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	crashpoint.Hit("workdir-create:after-mount")
	if err := c.dirs().WriteSnapinfo(ext, snapVol); err != nil {
		o.m.log.Warn("record current snapshot of new workdir", "err", err)
	}
	crashpoint.Hit("workdir-create:after-record")
	v.Origin = snapVol
	o.m.patch(c.Pool, v)
	return &WorkdirState{Root: root, Ext: ext, LV: vol, Snapshot: snap, Created: v.Created,
		VirtualSize: v.VirtualSize, Mountpoint: target, Mounted: true, Device: v.Mount.Source}, nil
}

// lockShared takes mock's locks in shared mode, as mock holds them during
// a build: an init in progress (exclusive init lock) or a scrub
// (exclusive pool lock) makes us wait.
func (m *Manager) lockShared(ctx context.Context, c *Config) (func(), error) {
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return nil, fmt.Errorf("basedir: %w", err)
	}
	init, err := lock.Lock(ctx, c.InitLockPath(), false, func(h lock.Holder) {
		m.log.Info("waiting for init lock", "config", c.Root, "holder_pid", h.PID)
	})
	if err != nil {
		return nil, err
	}
	pool, err := lock.Lock(ctx, c.PoolLockPath(), false, func(h lock.Holder) {
		m.log.Info("waiting for pool lock", "config", c.Root, "holder_pid", h.PID)
	})
	if err != nil {
		init.Release()
		return nil, err
	}
	return func() { pool.Release(); init.Release() }, nil
}

// RemoveWorkdir unmounts and removes a working volume. ErrBusy when a
// build holds it or something still uses the mount.
func (m *Manager) RemoveWorkdir(ctx context.Context, root, ext string) error {
	if _, err := m.opConfig(root); err != nil {
		return err
	}
	if err := mock.ValidateExt(root, ext); err != nil {
		return err
	}
	return m.do(ctx, root, lockFresh, func(o *op) error {
		if err := o.ready(); err != nil {
			return err
		}
		vol := mock.WorkdirVolume(root, ext)
		if o.r.Find(vol) == nil {
			return notFound("workdir", root+"."+ext)
		}
		if who := m.heldBy(root, ext); who != "" {
			return fmt.Errorf("remove workdir %s.%s: used by %s: %w", root, ext, who, ErrBusy)
		}
		target := o.c.ChrootDir(ext)
		// What it read warms the next spares of its snapshot.
		m.noteHot(root, o.r.Find(vol).Origin, target)
		// Unmount before anything is recorded: a busy mount changes
		// nothing. What the workdir's cache still holds is dropped, not
		// written to a volume removed next (a second or more after a
		// package manager's run); should a crash come before the intent,
		// the workdir is mounted again as its journal last had it.
		if err := m.mounter.Discard(target); err != nil {
			return fmt.Errorf("remove workdir %s.%s: %w", root, ext, err)
		}
		if err := o.begin(journal.Intent{Op: journal.WorkdirRemove, Volumes: []string{vol}, Mounts: []string{target}}); err != nil {
			return err
		}
		crashpoint.Hit("workdir-remove:after-unmount")
		if err := o.be.Remove(o.mctx, o.c.Pool, vol); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove workdir %s.%s: %w", root, ext, err)
		}
		crashpoint.Hit("workdir-remove:after-remove")
		removeMountDirs(target)
		m.patch(o.c.Pool, nil, vol)
		return nil
	})
}

// Reconcile brings the host in line with the volumes after a restart:
// it finishes interrupted operations and mounts workdirs that exist but
// are not mounted (after a reboot, or when mock left its head unmounted),
// so every workdir listed can be entered. Recovery runs once per pool and
// Manager however often this and Recover are called.
func (m *Manager) Reconcile(ctx context.Context) error {
	var errs []error
	if err := m.Recover(ctx); err != nil {
		errs = append(errs, err)
	}
	st, err := m.Refresh(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range st.Pools {
		for _, cs := range p.Configs {
			if !cs.Known {
				continue
			}
			for _, w := range cs.Workdirs {
				if w.Mounted {
					continue
				}
				if err := m.activateWorkdir(ctx, cs.Root, w.Ext); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	m.publish()
	return errors.Join(errs...)
}

// activateWorkdir mounts an existing workdir that is not mounted.
func (m *Manager) activateWorkdir(ctx context.Context, root, ext string) error {
	return m.do(ctx, root, lockFresh, func(o *op) error {
		target := o.c.ChrootDir(ext)
		if m.isMounted(target) {
			return nil
		}
		v, err := o.be.Activate(o.mctx, o.c.Pool, mock.WorkdirVolume(root, ext))
		if err != nil {
			return fmt.Errorf("mount workdir %s.%s: %w", root, ext, err)
		}
		err = m.mountVolume(o.c, o.be, v, target)
		release(o.be, v)
		if err != nil {
			return fmt.Errorf("mount workdir %s.%s: %w", root, ext, err)
		}
		m.log.Info("mounted workdir", "config", root, "ext", ext, "at", target)
		return nil
	})
}
