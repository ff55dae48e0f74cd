package lvm

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/thinroot/thinroot/lvm/backend"
)

// The Manager's picture of the pools: one cached report per pool, from
// the last scan, patched by the operations of this process. A scan that
// started before a patch must not overwrite it.

// Refresh rescans every pool (one backend report each) and publishes a
// new State. It only refreshes: a pool is opened (its leftovers dealt
// with) the first time it is scanned, and an operation whose process
// died since is finished when the publication finds its intent
// (recover.go).
func (m *Manager) Refresh(ctx context.Context) (*State, error) {
	m.discover(ctx)
	var errs []error
	for _, p := range m.poolEntries() {
		if _, err := m.scanPool(ctx, p, false); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	st, dead := m.publishAll()
	if len(dead) > 0 {
		if err := m.finishDead(ctx, dead); err != nil {
			m.log.Warn("finishing interrupted operations", "err", err)
		}
		st = m.publish()
	}
	m.sweepSpares(ctx)
	return st, errors.Join(errs...)
}

func (m *Manager) poolEntries() []*poolEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*poolEntry, 0, len(m.pools))
	for _, n := range sortedKeys(m.pools) {
		out = append(out, m.pools[n])
	}
	return out
}

// pool returns a pool's entry (nil when the Manager does not know it).
func (m *Manager) pool(name string) *poolEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pools[name]
}

// discover adds pools the backends know of that no config names: those
// of every backend the Manager has opened, of every registered kind that
// needs no settings, and of Options.Discover.
func (m *Manager) discover(ctx context.Context) {
	specs := map[string]backend.Spec{}
	for _, s := range append(backend.Defaults(), m.opts.Discover...) {
		specs[s.String()] = s
	}
	m.mu.Lock()
	for _, p := range m.pools {
		specs[p.spec.String()] = p.spec
	}
	m.mu.Unlock()
	for _, key := range sortedKeys(specs) {
		s := specs[key]
		be, err := m.backend(s)
		if err != nil {
			m.log.Debug("open backend", "backend", key, "err", err)
			continue
		}
		names, err := be.Pools(ctx)
		if err != nil {
			m.log.Debug("list pools", "backend", key, "err", err)
			continue
		}
		m.mu.Lock()
		for _, n := range names {
			if _, ok := m.pools[n]; !ok {
				m.pools[n] = &poolEntry{name: n, spec: s, backend: be}
			}
		}
		m.mu.Unlock()
	}
}

// scanPool scans one pool, opening it first the first time. The report
// replaces the cached one unless an operation of this process patched
// that meanwhile (the scan may predate the patch): then the patched one
// stays, unless sync is set. sync is for an operation that holds its
// config's lock and must decide on what is on disk rather than on a
// picture another process (a second daemon, the CLI, mock) may have
// outdated while it waited: it scans again, and after a few tries the
// scan wins (that other operation rescans under its own lock anyway).
// It returns the scan's report either way; ErrNotFound when the pool
// does not exist (and the cached report is then nil).
func (m *Manager) scanPool(ctx context.Context, p *poolEntry, sync bool) (*backend.PoolReport, error) {
	m.openPool(ctx, p)
	for try := 0; ; try++ {
		m.mu.Lock()
		seen := p.patches
		m.mu.Unlock()
		r, err := p.backend.Scan(ctx, p.name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			m.mu.Lock()
			p.err = err
			m.dirty = true
			m.mu.Unlock()
			return nil, fmt.Errorf("scan pool %s: %w", p.name, err)
		}
		m.mu.Lock()
		if p.patches == seen || (sync && try >= 4) {
			p.report, p.err = r, nil
			if sync {
				// A scan that began before this one must not overwrite it.
				p.patches++
			}
			m.dirty = true
			m.mu.Unlock()
			return r, err
		}
		m.mu.Unlock()
		if !sync {
			return r, err
		}
	}
}

// rescan scans one pool by name (after taking a lock, before a choice
// that needs fresh figures).
func (m *Manager) rescan(ctx context.Context, pool string) (*backend.PoolReport, error) {
	p := m.pool(pool)
	if p == nil {
		return nil, notFound("pool", pool)
	}
	return m.scanPool(ctx, p, false)
}

// markDirty says the published State is out of date (a record or a
// journal entry changed); the next State or Refresh publishes again.
func (m *Manager) markDirty() {
	m.mu.Lock()
	m.dirty = true
	m.mu.Unlock()
}

// patch applies a change to a pool's cached report, so an operation costs
// no extra scan.
func (m *Manager) patch(pool string, add *backend.Volume, remove ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[pool]
	if !ok || p.report == nil {
		return
	}
	r := *p.report
	vols := make([]backend.Volume, 0, len(r.Volumes)+1)
	for _, v := range r.Volumes {
		drop := add != nil && v.Name == add.Name
		for _, n := range remove {
			drop = drop || v.Name == n
		}
		if !drop {
			vols = append(vols, v)
		}
	}
	if add != nil {
		a := *add
		a.Handle = nil
		vols = append(vols, a)
		sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	}
	r.Volumes = vols
	p.report = &r
	p.patches++
	m.dirty = true
}

// report returns the cached report of a pool (nil when it does not exist).
func (m *Manager) report(pool string) *backend.PoolReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pools[pool]; ok {
		return p.report
	}
	return nil
}

func (m *Manager) poolHasConfigs(name string) bool {
	for _, c := range m.configs {
		if c.Pool == name {
			return true
		}
	}
	return false
}
