package lvm

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// EnsurePool makes the config's pool exist, creating it if needed. Two
// processes (thinroot or mock) racing to create it end with one pool: the
// creator holds mock's per-config pool lock and thinroot's per-pool lock.
func (m *Manager) EnsurePool(ctx context.Context, root string) error {
	o, err := m.openOp(ctx, root)
	if err != nil {
		return err
	}
	c := o.c
	if m.report(c.Pool) != nil {
		return nil
	}
	if _, err := m.rescan(ctx, c.Pool); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("pool %s: %w", c.Pool, err)
	}
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return fmt.Errorf("basedir: %w", err)
	}
	own, err := lock.Lock(ctx, m.poolLockPath(c.Pool), true, func(lock.Holder) {
		m.log.Info("waiting for another process creating the pool", "pool", c.Pool)
	})
	if err != nil {
		return err
	}
	defer own.Release()
	mockLock, err := lock.Lock(ctx, c.PoolLockPath(), true, func(h lock.Holder) {
		m.log.Info("waiting for pool lock", "pool", c.Pool, "holder_pid", h.PID)
	})
	if err != nil {
		return err
	}
	defer mockLock.Release()
	if _, err := m.rescan(ctx, c.Pool); err == nil {
		return nil
	}
	size := c.PoolSize
	if size == 0 {
		size = c.Size
	}
	spec := backend.PoolSpec{Name: c.Pool, Size: size, MetadataSize: c.PoolMetadataSize, Directory: c.PoolDirectory,
		WarnPercent: m.opts.WarnPercent, RefusePercent: m.opts.RefusePercent}
	crashpoint.Hit("pool-create:before-create")
	if err := o.be.CreatePool(o.mctx, spec); err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("create pool %s: %w", c.Pool, err)
	}
	crashpoint.Hit("pool-create:after-create")
	m.log.Info("pool ready", "pool", c.Pool, "backend", o.be.Kind())
	_, err = m.rescan(ctx, c.Pool)
	return err
}

// CreatePool makes a pool by spec with the backend be names (thinroot
// pool create).
func (m *Manager) CreatePool(ctx context.Context, be backend.Spec, spec backend.PoolSpec) error {
	b, err := m.backend(be)
	if err != nil {
		return err
	}
	if err := mock.ValidatePool(spec.Name); err != nil {
		return err
	}
	if spec.WarnPercent == 0 {
		spec.WarnPercent = m.opts.WarnPercent
	}
	if spec.RefusePercent == 0 {
		spec.RefusePercent = m.opts.RefusePercent
	}
	if spec.WarnPercent >= spec.RefusePercent || spec.RefusePercent > 100 || spec.WarnPercent < 0 {
		return fmt.Errorf("pool %s: thresholds warn %.0f%% and refuse %.0f%% must satisfy 0 <= warn < refuse <= 100", spec.Name, spec.WarnPercent, spec.RefusePercent)
	}
	own, err := lock.Lock(ctx, m.poolLockPath(spec.Name), true, nil)
	if err != nil {
		return err
	}
	defer own.Release()
	if err := b.CreatePool(context.WithoutCancel(ctx), spec); err != nil {
		return fmt.Errorf("create pool %s: %w", spec.Name, err)
	}
	m.mu.Lock()
	if _, ok := m.pools[spec.Name]; !ok {
		m.pools[spec.Name] = &poolEntry{name: spec.Name, spec: be, backend: b}
	}
	m.mu.Unlock()
	_, err = m.rescan(ctx, spec.Name)
	return err
}

// RemovePool removes a pool that holds no volumes at all.
func (m *Manager) RemovePool(ctx context.Context, name string) error {
	p := m.pool(name)
	if p == nil {
		m.discover(ctx)
		if p = m.pool(name); p == nil {
			return notFound("pool", name)
		}
	}
	own, err := lock.Lock(ctx, m.poolLockPath(name), true, nil)
	if err != nil {
		return err
	}
	defer own.Release()
	if err := p.backend.RemovePool(context.WithoutCancel(ctx), name); err != nil {
		return fmt.Errorf("remove pool %s: %w", name, err)
	}
	m.forgetPool(name)
	return nil
}

// forgetPool drops a removed pool from the picture (a pool some config
// names stays, empty).
func (m *Manager) forgetPool(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.poolHasConfigs(name) {
		delete(m.pools, name)
	} else if p, ok := m.pools[name]; ok {
		p.report = nil
	}
	m.dirty = true
}

// removeEmptyPool removes pool when no volume of anyone is left in it
// (scrub of its last config, or the recovery of one).
func (m *Manager) removeEmptyPool(ctx context.Context, be backend.Backend, pool string) (bool, error) {
	r, err := be.Scan(ctx, pool)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, v := range r.Volumes {
		if v.Thin {
			return false, nil
		}
	}
	plock, err := lock.Lock(ctx, m.poolLockPath(pool), true, nil)
	if err != nil {
		return false, err
	}
	defer plock.Release()
	err = be.RemovePool(context.WithoutCancel(ctx), pool)
	if errors.Is(err, ErrNotEmpty) || isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove pool %s: %w", pool, err)
	}
	m.mu.Lock()
	if p, ok := m.pools[pool]; ok {
		p.report = nil
	}
	m.dirty = true
	m.mu.Unlock()
	m.log.Info("removed the pool: nothing else was in it", "pool", pool)
	return true, nil
}
