package lvm

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Scrub removes every volume of a config (unmounting workdirs lazily, as
// mock does) and its records; the pool goes too when no volume of anyone
// is left in it. ErrBusy while a build holds a workdir or while mock (or
// another thinroot) holds the config's pool lock.
func (m *Manager) Scrub(ctx context.Context, root string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return err
	}
	return m.do(ctx, root, lockCached, func(o *op) error {
		poolLock, err := lock.TryLock(c.PoolLockPath(), true)
		if err != nil {
			return err
		}
		if poolLock == nil {
			return fmt.Errorf("scrub %s: the config is in use (its pool lock is held): %w", root, ErrBusy)
		}
		defer poolLock.Release()
		if who := m.heldUnder(root); who != "" {
			return fmt.Errorf("scrub %s: workdir %s: %w", root, who, ErrBusy)
		}
		return o.scrub()
	})
}

// heldUnder names a held workdir of the config ("ext used by who"), "" for
// none.
func (m *Manager) heldUnder(root string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, who := range m.holds {
		if ext, ok := strings.CutPrefix(k, root+"/"); ok {
			return ext + " used by " + who
		}
	}
	return ""
}

func (o *op) scrub() error {
	c, root := o.c, o.c.Root
	r, err := o.m.rescan(o.ctx, c.Pool)
	if isNotFound(err) {
		o.m.clearRecords(c)
		return nil
	}
	if err != nil {
		return err
	}
	var ours, mounts []string
	for _, v := range r.Volumes {
		if !v.Thin || !mock.IsOurs(root, v.Name) {
			continue
		}
		ours = append(ours, v.Name)
		if vn, ok := mock.ParseVolume(v.Name, []string{root}); ok && vn.Workdir {
			mounts = append(mounts, c.ChrootDir(vn.Name))
		}
	}
	// The config's warm spares go first.
	spareVols, spareMounts := o.m.sparesForRemoval(r, func(origin string) bool { return mock.IsOurs(root, origin) })
	ours, mounts = append(spareVols, ours...), append(spareMounts, mounts...)
	in := journal.Intent{Op: journal.Scrub, Volumes: ours, Mounts: mounts}
	for _, ext := range c.dirs().SnapinfoExts() {
		in.Records = append(in.Records, o.record(ext, ""))
	}
	if err := o.begin(in); err != nil {
		return err
	}
	for _, mp := range mounts {
		if err := o.m.mounter.Unmount(mp, true); err != nil {
			return fmt.Errorf("scrub %s: %w", root, err)
		}
	}
	crashpoint.Hit("scrub:after-unmount")
	for i, vol := range ours {
		o.m.log.Info("removing volume", "config", root, "volume", vol)
		if err := o.be.Remove(o.mctx, c.Pool, vol); err != nil && !isNotFound(err) {
			return fmt.Errorf("scrub %s: %w", root, err)
		}
		o.m.patch(c.Pool, nil, vol)
		if i == 0 {
			crashpoint.Hit("scrub:after-first-remove")
		}
	}
	crashpoint.Hit("scrub:after-remove")
	for _, mp := range mounts {
		removeMountDirs(mp)
	}
	o.m.clearRecords(c)
	crashpoint.Hit("scrub:after-records")
	if _, err := o.m.removeEmptyPool(o.mctx, o.be, c.Pool); err != nil {
		return fmt.Errorf("scrub %s: %w", root, err)
	}
	return nil
}

// clearRecords removes the config's current-snapshot records and its
// failure status.
func (m *Manager) clearRecords(c *Config) {
	for _, ext := range c.dirs().SnapinfoExts() {
		c.dirs().RemoveSnapinfo(ext)
	}
	os.Remove(m.statusPath(c.Root))
	m.markDirty()
}
