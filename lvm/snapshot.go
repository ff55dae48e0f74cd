package lvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Snapshot takes a snapshot named name of the workdir for ext and makes
// it ext's current snapshot, as mock --snapshot does.
func (m *Manager) Snapshot(ctx context.Context, root, ext, name string) error {
	if _, err := m.opConfig(root); err != nil {
		return err
	}
	if err := mock.ValidateExt(root, ext); err != nil {
		return err
	}
	if err := mock.ValidateSnapshot(root, name); err != nil {
		return err
	}
	return m.do(ctx, root, lockFresh, func(o *op) error { return o.snapshot(ext, name) })
}

func (o *op) snapshot(ext, name string) error {
	c, root := o.c, o.c.Root
	if err := o.ready(); err != nil {
		return err
	}
	vol := mock.WorkdirVolume(root, ext)
	if o.r.Find(vol) == nil {
		return notFound("workdir", root+"."+ext)
	}
	snapVol := mock.SnapshotVolume(root, name)
	if o.r.Find(snapVol) != nil {
		return exists("snapshot", root+"/"+name)
	}
	if err := o.m.ensureSpace(o.ctx, c, o.be, o.r); err != nil {
		return fmt.Errorf("snapshot %s/%s: %w", root, name, err)
	}
	target := c.ChrootDir(ext)
	opts := backend.SnapshotOptions{}
	in := journal.Intent{Op: journal.Snapshot, Volumes: []string{snapVol},
		Records: []journal.Record{o.record(ext, snapVol)}}
	if o.m.isMounted(target) {
		opts.OriginMount = target
		in.Frozen = []string{target}
	}
	if err := o.begin(in); err != nil {
		return err
	}
	crashpoint.Hit("snapshot:before-snapshot")
	v, err := o.be.Snapshot(o.mctx, c.Pool, vol, snapVol, opts)
	if err != nil {
		return fmt.Errorf("snapshot %s/%s: %w", root, name, err)
	}
	crashpoint.Hit("snapshot:after-snapshot")
	if err := c.dirs().WriteSnapinfo(ext, snapVol); err != nil {
		return err
	}
	crashpoint.Hit("snapshot:after-record")
	o.m.patch(c.Pool, v)
	return nil
}

// Current returns the current snapshot of (root, ext): mock's record, or
// postinit when there is no valid record.
func (m *Manager) Current(root, ext string) (string, error) {
	c, err := m.opConfig(root)
	if err != nil {
		return "", err
	}
	r := m.report(c.Pool)
	vol, err := c.dirs().ReadSnapinfo(ext)
	if err != nil {
		return "", err
	}
	if vol != "" && mock.IsOurs(root, vol) && r.Find(vol) != nil {
		if vn, ok := mock.ParseVolume(vol, []string{root}); ok && !vn.Workdir {
			return vn.Name, nil
		}
	}
	if r.Find(mock.SnapshotVolume(root, mock.PostInit)) != nil {
		return mock.PostInit, nil
	}
	return "", fmt.Errorf("config %s has no snapshot: %w", root, ErrNotReady)
}

// SetCurrent records snap as the current snapshot of (root, ext).
func (m *Manager) SetCurrent(ctx context.Context, root, ext, snap string) error {
	if _, err := m.opConfig(root); err != nil {
		return err
	}
	if err := mock.ValidateExt(root, ext); err != nil {
		return err
	}
	if err := mock.ValidateSnapshot(root, snap); err != nil {
		return err
	}
	return m.do(ctx, root, lockFresh, func(o *op) error {
		if err := o.ready(); err != nil {
			return err
		}
		vol := mock.SnapshotVolume(root, snap)
		if o.r.Find(vol) == nil {
			return notFound("snapshot", root+"/"+snap)
		}
		if err := o.c.dirs().WriteSnapinfo(ext, vol); err != nil {
			return err
		}
		m.markDirty()
		return nil
	})
}

// RollbackTo does what mock --rollback-to does: make snap current for the
// config's unique-ext and remove that ext's workdir, so the next one is
// cloned from snap.
func (m *Manager) RollbackTo(ctx context.Context, root, snap string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if err := m.SetCurrent(ctx, root, c.UniqueExt, snap); err != nil {
		return err
	}
	err = m.RemoveWorkdir(ctx, root, c.UniqueExt)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// RemoveSnapshot removes a snapshot. postinit is refused (scrub removes
// it), as is a snapshot that workdirs were cloned from. Records naming it
// fall back to postinit.
func (m *Manager) RemoveSnapshot(ctx context.Context, root, snap string) error {
	if _, err := m.opConfig(root); err != nil {
		return err
	}
	if err := mock.ValidateSnapshot(root, snap); err != nil {
		return err
	}
	if snap == mock.PostInit {
		return fmt.Errorf("will not remove the postinit snapshot of %s; scrub removes all of its volumes: %w", root, ErrNotAllowed)
	}
	return m.do(ctx, root, lockFresh, func(o *op) error { return o.removeSnapshot(snap) })
}

func (o *op) removeSnapshot(snap string) error {
	c, root := o.c, o.c.Root
	if err := o.ready(); err != nil {
		return err
	}
	vol := mock.SnapshotVolume(root, snap)
	_, cs := o.m.State().Config(root)
	if cs == nil || cs.Snapshot(snap) == nil {
		return notFound("snapshot", root+"/"+snap)
	}
	if ws := cs.Snapshot(snap).Workdirs; len(ws) > 0 {
		exts := make([]string, len(ws))
		for i, w := range ws {
			exts[i] = w.Ext
		}
		return fmt.Errorf("snapshot %s/%s has workdirs %s: %w", root, snap, strings.Join(exts, ", "), ErrNotEmpty)
	}
	// Records naming the snapshot fall back to postinit. They change only
	// once the removal is on record, so a kill anywhere finishes both.
	// Its warm spares go with it, first.
	spares, spareMounts := o.m.sparesForRemoval(o.r, func(origin string) bool { return origin == vol })
	in := journal.Intent{Op: journal.SnapshotRemove, Volumes: append(spares, vol), Mounts: spareMounts}
	for _, ext := range c.dirs().SnapinfoExts() {
		if rec, _ := c.dirs().ReadSnapinfo(ext); rec == vol {
			in.Records = append(in.Records, o.record(ext, mock.SnapshotVolume(root, mock.PostInit)))
		}
	}
	if err := o.begin(in); err != nil {
		return err
	}
	for _, rc := range in.Records {
		if err := rc.Set(true); err != nil {
			return fmt.Errorf("remove snapshot %s/%s: %w", root, snap, err)
		}
	}
	crashpoint.Hit("snapshot-remove:after-records")
	for i, mp := range spareMounts {
		if err := o.m.mounter.Unmount(mp, true); err != nil {
			return fmt.Errorf("remove snapshot %s/%s: its spare: %w", root, snap, err)
		}
		if err := o.be.Remove(o.mctx, c.Pool, spares[i]); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove snapshot %s/%s: its spare: %w", root, snap, err)
		}
		os.Remove(mp)
		o.m.patch(c.Pool, nil, spares[i])
	}
	if err := o.be.Remove(o.mctx, c.Pool, vol); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove snapshot %s/%s: %w", root, snap, err)
	}
	crashpoint.Hit("snapshot-remove:after-remove")
	o.m.patch(c.Pool, nil, vol)
	return nil
}
