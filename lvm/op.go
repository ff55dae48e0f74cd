package lvm

import (
	"context"
	"fmt"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Every operation that changes volumes runs the same skeleton (do):
//
//  1. open: check the config's name, find the config and its backend;
//  2. lock: take thinroot's lock on the config; dead operations of the
//     config are finished first, and the pool is rescanned unless the
//     operation runs on the cached picture (lockCached);
//  3. check: the operation's own preconditions, on o.r;
//  4. intent: o.begin journals everything it will make, mount, freeze
//     and record, before it touches any of it;
//  5. act: its steps, each after a named crash point;
//  6. done: the intent goes. When a step after 4 fails, o.finish first
//     runs undo: the journal's way back, the code recovery runs for an
//     operation whose process died.
//
// Mock's own locks, when an operation takes them, are taken around do
// (init, workdir creation) or inside it (scrub), as mock orders them.

// lockMode says what picture an operation decides on.
type lockMode int

const (
	// lockFresh rescans the pool under the config's lock: the operation
	// decides on what is on disk, not on a picture another process may
	// have outdated while it waited.
	lockFresh lockMode = iota
	// lockCached decides on the cached picture: workdir creation, the one
	// operation on a hot path with a budget of backend calls (2 lvm2
	// commands). It needs no fresh picture: the backend itself refuses a
	// volume that exists and an origin that is gone, atomically, and a
	// workdir another process made shows as its mount.
	lockCached
)

// op is one run of an operation on one config.
type op struct {
	m *Manager
	// ctx is the caller's: waits and checks end with it. mctx is never
	// cancelled: once a step changes volumes it runs to its end.
	ctx, mctx context.Context
	c         *Config
	spec      backend.Spec
	be        backend.Backend
	// r is the pool as the operation found it under the lock; nil when
	// the pool does not exist.
	r     *backend.PoolReport
	entry *journal.Entry
}

// do runs fn as an operation on config root (steps 1, 2 and 6 above; fn
// does 3 to 5).
func (m *Manager) do(ctx context.Context, root string, mode lockMode, fn func(o *op) error) error {
	o, err := m.openOp(ctx, root)
	if err != nil {
		return err
	}
	held, err := m.lockConfig(ctx, o.c, mode == lockFresh)
	if err != nil {
		return err
	}
	defer held.Release()
	o.r = m.report(o.c.Pool)
	err = fn(o)
	o.finish(err)
	return err
}

// openOp is step 1.
func (m *Manager) openOp(ctx context.Context, root string) (*op, error) {
	c, err := m.opConfig(root)
	if err != nil {
		return nil, err
	}
	spec, err := c.BackendSpec()
	if err != nil {
		return nil, err
	}
	be, err := m.backend(spec)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", root, err)
	}
	return &op{m: m, ctx: ctx, mctx: context.WithoutCancel(ctx), c: c, spec: spec, be: be}, nil
}

// opConfig validates a config's name and returns the config.
func (m *Manager) opConfig(root string) (*Config, error) {
	if err := mock.ValidateRoot(root); err != nil {
		return nil, err
	}
	return m.Config(root)
}

// lockConfig is step 2: thinroot's lock on the config, across goroutines
// and processes. Once it holds the lock it finishes the config's
// operations that died half way, so no operation starts on top of
// another's leftovers, and sweeps the temporaries of the config's
// records; with fresh it rescans the pool.
func (m *Manager) lockConfig(ctx context.Context, c *Config, fresh bool) (*lock.Held, error) {
	l, err := lock.Lock(ctx, m.configLockPath(c.Root), true, func(lock.Holder) {
		m.log.Info("waiting for another thinroot operation on the config", "config", c.Root)
	})
	if err != nil {
		return nil, err
	}
	if p := m.pool(c.Pool); p != nil {
		m.openPool(ctx, p)
	}
	if err := m.recoverIntents(ctx, func(in journal.Listed) bool { return in.Root == c.Root }, true); err != nil {
		l.Release()
		return nil, fmt.Errorf("config %s: finish an interrupted operation: %w", c.Root, err)
	}
	c.dirs().SweepSnapinfoTemps()
	if fresh {
		if p := m.pool(c.Pool); p != nil {
			if _, err := m.scanPool(ctx, p, true); err != nil && !isNotFound(err) {
				l.Release()
				return nil, fmt.Errorf("config %s: %w", c.Root, err)
			}
		}
	}
	return l, nil
}

// ready is the check of an operation on an initialized config: its pool
// exists.
func (o *op) ready() error {
	if o.r == nil {
		return fmt.Errorf("config %s: pool %s does not exist: %w", o.c.Root, o.c.Pool, ErrNotReady)
	}
	return nil
}

// begin is step 4: it journals the intent (the config, pool and backend
// are filled in here).
func (o *op) begin(in journal.Intent) error {
	in.Root, in.Pool, in.Backend = o.c.Root, o.c.Pool, o.spec
	e, err := o.m.journal.Begin(in)
	if err != nil {
		return err
	}
	o.entry = e
	o.m.markDirty()
	return nil
}

// finish is step 6. After a failure the operation is undone (a removal:
// finished) first; a creation whose undo fails too stays in the journal
// for the next recovery, its volumes hidden meanwhile. A removal whose
// finishing fails leaves what is still there as it is, visible.
func (o *op) finish(err error) {
	e := o.entry
	if e == nil {
		return
	}
	o.entry = nil
	if err == nil {
		e.Done()
		o.m.markDirty()
		return
	}
	how := "rolling back"
	if e.Op.Forward() {
		how = "finishing"
	}
	o.m.log.Error(e.Root+": "+string(e.Op)+" failed; "+how, "err", err)
	if uerr := o.m.undo(o.mctx, &e.Intent); uerr != nil {
		o.m.log.Error(how+" the failed operation", "op", e.Op, "root", e.Root, "err", uerr)
		if !e.Op.Forward() {
			e.Release()
			o.m.markDirty()
			return
		}
	}
	e.Done()
	o.m.markDirty()
}

// record declares the change of ext's current-snapshot record to name
// vol ("" removes it), for an intent.
func (o *op) record(ext, vol string) journal.Record {
	return journal.Change(o.c.SnapinfoPath(ext), vol)
}
