package lvm

import (
	"context"
	"errors"
	"fmt"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
)

// Recovery: what a process left half done when it died is finished by the
// one way back the journal describes (undo.go), at three moments only:
//
//  1. when a Manager opens a pool (the first time it scans it): the start-up
//     sweep of this layer, in one place (openPool): every dead operation
//     on the pool, the backend's temporaries (backend.Sweeper), the
//     temporaries of the current-snapshot records of the pool's configs,
//     and intents their writers died writing;
//  2. when an operation takes a config's lock: the config's dead
//     operations, so that no operation starts on another's leftovers
//     (lockConfig);
//  3. when a Refresh's publication finds the intent of a process that died
//     since (a command killed while the daemon runs): that operation.
//
// A live operation is never touched, nor a dead one whose config's lock
// someone holds: the holder finishes it. Until then its volumes are
// hidden from the State.

// Recover finishes what dead processes left half done: it opens every
// pool the Manager knows (once per pool and Manager; see openPool) and
// finishes any dead operation that is left, on a pool it knows or not.
// It asks no backend for pools (Refresh does: a pool found then is opened
// when it is first scanned). Calling it again costs a look at the journal.
func (m *Manager) Recover(ctx context.Context) error {
	for _, p := range m.poolEntries() {
		m.openPool(ctx, p)
	}
	return m.recoverIntents(ctx, func(journal.Listed) bool { return true }, false)
}

// openPool deals with a pool's leftovers the first time this Manager
// looks at it.
func (m *Manager) openPool(ctx context.Context, p *poolEntry) {
	m.mu.Lock()
	opened := p.opened
	p.opened = true
	m.mu.Unlock()
	if opened {
		return
	}
	m.journal.SweepTemps()
	err := m.recoverIntents(ctx, func(in journal.Listed) bool {
		return in.Pool == p.name && in.Backend.String() == p.spec.String()
	}, false)
	if err != nil {
		m.log.Warn("finishing interrupted operations", "pool", p.name, "err", err)
	}
	m.sweepPool(ctx, p.backend, p.name)
	for _, c := range m.Configs() {
		if c.Pool != p.name {
			continue
		}
		// Under the config's lock, which every writer of its records
		// holds; a config in use is swept by its next operation.
		if l, err := lock.TryLock(m.configLockPath(c.Root), true); err == nil && l != nil {
			c.dirs().SweepSnapinfoTemps()
			l.Release()
		}
	}
}

// sweepPool has the backend remove what dead processes left inside it.
func (m *Manager) sweepPool(ctx context.Context, be backend.Backend, pool string) {
	if s, ok := be.(backend.Sweeper); ok {
		if err := s.Sweep(ctx, pool); err != nil && !errors.Is(err, ErrNotFound) {
			m.log.Warn("sweep the pool's temporaries", "pool", pool, "err", err)
		}
	}
}

// finishDead finishes the operations a publication found dead, each once
// from here: one that cannot be finished yet (its config is in use, a
// volume is busy) is left to the next operation on its config.
func (m *Manager) finishDead(ctx context.Context, dead []journal.Listed) error {
	paths := map[string]bool{}
	m.mu.Lock()
	for _, d := range dead {
		if !m.reaped[d.Path] {
			m.reaped[d.Path] = true
			paths[d.Path] = true
		}
	}
	m.mu.Unlock()
	if len(paths) == 0 {
		return nil
	}
	return m.recoverIntents(ctx, func(in journal.Listed) bool { return paths[in.Path] }, false)
}

// recoverIntents finishes the dead intents match selects. With haveLock
// the caller holds the config lock of every intent it selects; otherwise
// each is finished only if its config's lock is free.
func (m *Manager) recoverIntents(ctx context.Context, match func(journal.Listed) bool, haveLock bool) error {
	var errs []error
	swept := map[string]bool{}
	for _, l := range m.journal.List() {
		if l.Live || !match(l) {
			continue
		}
		if !haveLock && l.Root != "" {
			cl, err := lock.TryLock(m.configLockPath(l.Root), true)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if cl == nil {
				continue // an operation on the config runs; it finishes this
			}
			err = m.recoverOne(ctx, l.Path)
			cl.Release()
			errs = append(errs, err)
		} else {
			errs = append(errs, m.recoverOne(ctx, l.Path))
		}
		if key := l.Backend.String() + "\x00" + l.Pool; !swept[key] && l.Pool != "" {
			swept[key] = true
			if be, err := m.backend(l.Backend); err == nil {
				m.sweepPool(ctx, be, l.Pool)
			}
		}
	}
	return errors.Join(errs...)
}

// recoverOne claims one dead intent and takes its operation to the end
// its type says. When that fails the intent stays for the next recovery.
func (m *Manager) recoverOne(ctx context.Context, path string) error {
	e, err := m.journal.Claim(path)
	if err != nil || e == nil {
		return err
	}
	how := "rolling back"
	if e.Op.Forward() {
		how = "finishing"
	}
	m.log.Warn(how+" an interrupted operation", "op", e.Op, "root", e.Root,
		"pid", e.PID, "started", e.Started, "volumes", e.Volumes)
	if err := m.undo(context.WithoutCancel(ctx), &e.Intent); err != nil {
		e.Release()
		return fmt.Errorf("recover %s of %s: %w", e.Op, e.Root, err)
	}
	e.Done()
	m.markDirty()
	return nil
}
