package lvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Warm spares. A workdir costs a clone, a device, a mount and records
// when it is asked for; a spare is a workdir made ahead of the ask, of no
// ext yet: for each (config, snapshot) used recently, the Manager keeps
// SpareOptions.Count of them cloned, attached and mounted in a private
// directory (<state dir>/spares, a private bind mount of itself so that
// mounts can be moved out of it). CreateWorkdir hands one over by
// renaming its volume to the workdir's (backend.Renamer), moving its
// mount into mock's path (MS_MOVE) and writing the records, then asks
// for a refill, which runs in the background.
//
// Spares are nobody's workdirs: their volumes are named outside mock's
// scheme (SparePrefix), so neither the State, the tree nor mock lists
// them, and they are not counted among the pool's volumes. They are made
// only while the pool is under its warn threshold, and all of a pool's
// go before a user's volume is refused for space. Scrub removes a
// config's, RemoveSnapshot a snapshot's; one whose snapshot was made
// again since is removed instead of handed over.
//
// Every step is journaled: making one is a creation (a crash rolls it
// back), removing one a removal (finished), and a hand-over is a workdir
// creation that names the spare too (rolled back: both go). One process
// at a time keeps spares: it holds <state dir>/locks/spares.lock; any
// Manager that finds spare volumes while that lock is free removes them
// (a keeper that died left them), at its first scan of the pool and at
// every Refresh.

// SparePrefix starts the volume name of every spare.
const SparePrefix = "thinroot-spare-"

// IsSpare tells whether a volume name is a spare's.
func IsSpare(vol string) bool { return strings.HasPrefix(vol, SparePrefix) }

// SpareOptions configure warm spares.
type SpareOptions struct {
	// Count is how many spares to keep for each (config, snapshot) used
	// within Idle. 0 keeps none (StartSpares still takes ownership, and
	// MakeSpare makes one on request).
	Count int
	// Idle is how long after its last use a (config, snapshot) keeps its
	// spares; default DefaultSpareIdle.
	Idle time.Duration
	// Max bounds the spares kept in all, the most recently used
	// (config, snapshot) first; default DefaultSpareMax.
	Max int
	// RefillDelay is how long the refill waits after a hand-over before it
	// clones the next spare, so that the clone, the mount and the cache
	// warming do not compete with the first moments of the workdir just
	// handed over (its first execs); default DefaultRefillDelay, negative
	// for none.
	RefillDelay time.Duration
}

// DefaultRefillDelay is SpareOptions.RefillDelay's default.
const DefaultRefillDelay = 250 * time.Millisecond

// DefaultSpareMax is how many spares a keeper holds at most, whatever the
// number of (config, snapshot) pairs in use: each is a device and a
// mount.
const DefaultSpareMax = 8

// DefaultSpareIdle is how long a (config, snapshot) keeps its spares
// after it was last used.
const DefaultSpareIdle = 15 * time.Minute

type spareKey struct{ root, snap string }

// spare is one made spare, as its keeper knows it.
type spare struct {
	key spareKey
	vol string
	mnt string
	// origin is the snapshot's volume and originCreated its creation
	// time when the spare was cloned: a snapshot made again since (same
	// name, newer time) makes the spare stale.
	origin        string
	originCreated time.Time
	v             backend.Volume
}

// spareSet is the keeper's state.
type spareSet struct {
	opts  SpareOptions
	dir   string
	owner *lock.Held

	mu    sync.Mutex
	ready map[spareKey][]*spare
	used  map[spareKey]time.Time

	// taken counts hand-overs, warmed spares whose cache was filled.
	taken, warmed atomic.Int64
	// hot is what the workdirs of each key read (spares_warm.go).
	hot map[spareKey]*hotSet

	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

func (m *Manager) sparesDir() string { return filepath.Join(m.opts.StateDir, "spares") }
func (m *Manager) sparesLockPath() string {
	return filepath.Join(m.opts.StateDir, "locks", "spares.lock")
}

// Mover is implemented by Mounters that can move a mount (MS_MOVE); the
// host's does. Spares need it.
type Mover interface {
	Move(from, to string) error
}

func (hostMounter) Move(from, to string) error {
	if err := unix.Mount(from, to, "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move mount %s to %s: %w", from, to, err)
	}
	return nil
}

// StartSpares makes this Manager the keeper of spares: it takes the
// spares lock, removes what a keeper before it left, prepares the private
// directory and starts the refill in the background. Call StopSpares
// before the process ends; it removes them all.
func (m *Manager) StartSpares(ctx context.Context, o SpareOptions) error {
	if _, ok := m.mounter.(Mover); !ok {
		return fmt.Errorf("warm spares: this Mounter cannot move mounts: %w", ErrUnsupported)
	}
	if o.Idle <= 0 {
		o.Idle = DefaultSpareIdle
	}
	if o.Max <= 0 {
		o.Max = DefaultSpareMax
	}
	if o.RefillDelay == 0 {
		o.RefillDelay = DefaultRefillDelay
	}
	if o.Count < 0 {
		o.Count = 0
	}
	m.mu.Lock()
	running := m.spares != nil
	m.mu.Unlock()
	if running {
		return fmt.Errorf("warm spares: already kept by this process: %w", ErrExists)
	}
	l, err := lock.TryLock(m.sparesLockPath(), true)
	if err != nil {
		return fmt.Errorf("warm spares: %w", err)
	}
	if l == nil {
		return fmt.Errorf("warm spares: another thinroot process keeps them (%s is held); run one daemon with --spares: %w",
			m.sparesLockPath(), ErrBusy)
	}
	s := &spareSet{opts: o, dir: m.sparesDir(), owner: l, ready: map[spareKey][]*spare{}, used: map[spareKey]time.Time{},
		hot:  map[spareKey]*hotSet{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	m.sweepSparesLocked(ctx)
	if err := privateDir(s.dir); err != nil {
		l.Release()
		return fmt.Errorf("warm spares: prepare %s: %w", s.dir, err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	m.mu.Lock()
	m.spares = s
	m.mu.Unlock()
	go m.refillLoop(rctx, s)
	return nil
}

// privateDir makes dir a private bind mount of itself (once), so that a
// mount under it can be moved elsewhere even where / is a shared mount.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !isMountpoint(dir) {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("make %s private: %w", dir, err)
	}
	return nil
}

func isMountpoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(dir, &a) != nil || unix.Lstat(filepath.Dir(dir), &b) != nil {
		return false
	}
	if a.Dev != b.Dev {
		return true
	}
	// A bind mount of a directory onto itself keeps the device: ask the
	// mount table.
	mounted, _ := hostMounter{}.Mounted()
	return mounted(dir)
}

// StopSpares ends the refill and removes every spare; the spares lock
// goes last. Safe to call when spares were never started.
func (m *Manager) StopSpares(ctx context.Context) {
	m.mu.Lock()
	s := m.spares
	m.mu.Unlock()
	if s == nil {
		return
	}
	s.stop()
	<-s.done
	m.mu.Lock()
	m.spares = nil
	m.mu.Unlock()
	m.sweepSparesLocked(ctx)
	s.owner.Release()
}

// keeper returns the spare set when this Manager keeps spares.
func (m *Manager) keeper() *spareSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spares
}

// Spares counts the spares ready now, by "root/snapshot".
func (m *Manager) Spares() map[string]int {
	out := map[string]int{}
	s := m.keeper()
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, l := range s.ready {
		if len(l) > 0 {
			out[k.root+"/"+k.snap] = len(l)
		}
	}
	return out
}

// SparesTaken counts the workdirs this keeper made from spares.
func (m *Manager) SparesTaken() int64 {
	if s := m.keeper(); s != nil {
		return s.taken.Load()
	}
	return 0
}

// noteUse records that a workdir of (root, snap) was asked for, so the
// refill keeps spares for it, and wakes the refill.
func (s *spareSet) noteUse(k spareKey) {
	s.mu.Lock()
	s.used[k] = time.Now()
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// pop takes a spare of k off the list, nil when there is none.
func (s *spareSet) pop(k spareKey) *spare {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.ready[k]
	if len(l) == 0 {
		return nil
	}
	sp := l[0]
	s.ready[k] = l[1:]
	return sp
}

// take removes from the lists, and returns, the spares match selects.
func (s *spareSet) take(match func(*spare) bool) []*spare {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*spare
	for k, l := range s.ready {
		kept := l[:0:0]
		for _, sp := range l {
			if match(sp) {
				out = append(out, sp)
			} else {
				kept = append(kept, sp)
			}
		}
		s.ready[k] = kept
	}
	return out
}

// refillLoop keeps Count spares for every key used within Idle and drops
// the spares of keys idle longer, on every kick and once a minute.
func (m *Manager) refillLoop(ctx context.Context, s *spareSet) {
	defer close(s.done)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			if d := s.opts.RefillDelay; d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		case <-tick.C:
		}
		m.refill(ctx, s)
	}
}

func (m *Manager) refill(ctx context.Context, s *spareSet) {
	s.mu.Lock()
	var want, idle []spareKey
	total := 0
	for _, l := range s.ready {
		total += len(l)
	}
	for k, t := range s.used {
		if time.Since(t) > s.opts.Idle {
			idle = append(idle, k)
			delete(s.used, k)
		} else if len(s.ready[k]) < s.opts.Count {
			want = append(want, k)
		}
	}
	s.mu.Unlock()
	for _, k := range idle {
		for _, sp := range s.take(func(sp *spare) bool { return sp.key == k }) {
			m.removeSpare(ctx, sp)
		}
	}
	// The most recently used first, up to Max spares in all.
	s.mu.Lock()
	sort.Slice(want, func(i, j int) bool { return s.used[want[i]].After(s.used[want[j]]) })
	s.mu.Unlock()
	for _, k := range want {
		for ctx.Err() == nil {
			s.mu.Lock()
			n := len(s.ready[k])
			s.mu.Unlock()
			if n >= s.opts.Count || total >= s.opts.Max {
				break
			}
			total++
			if err := m.MakeSpare(ctx, k.root, k.snap); err != nil {
				if !errors.Is(err, errNoSpareRoom) {
					m.log.Warn("make a warm spare", "config", k.root, "snapshot", k.snap, "err", err)
				}
				break
			}
		}
	}
}

// errNoSpareRoom: the pool is over its warn threshold; no spare is made.
var errNoSpareRoom = errors.New("pool over its warn threshold: no spares")

// MakeSpare makes one spare of snapshot snap of config root ("" snap:
// the default ext's current snapshot) and adds it to the keeper's list.
// The Manager must keep spares (StartSpares).
func (m *Manager) MakeSpare(ctx context.Context, root, snap string) error {
	s := m.keeper()
	if s == nil {
		return fmt.Errorf("make a spare of %s: this process keeps no spares (StartSpares): %w", root, ErrNotAllowed)
	}
	if _, err := m.opConfig(root); err != nil {
		return err
	}
	unlockShared, err := m.lockShared(ctx, mustConfig(m, root))
	if err != nil {
		return err
	}
	defer unlockShared()
	var made *spare
	err = m.do(ctx, root, lockCached, func(o *op) error {
		sp, err := o.makeSpare(s, snap)
		if err != nil {
			return err
		}
		made = sp
		s.mu.Lock()
		s.ready[sp.key] = append(s.ready[sp.key], sp)
		s.mu.Unlock()
		return nil
	})
	if made != nil {
		m.warm(made)
	}
	return err
}

// SparesWarmed counts the spares whose cache was filled with what earlier
// workdirs of their snapshot read.
func (m *Manager) SparesWarmed() int64 {
	if s := m.keeper(); s != nil {
		return s.warmed.Load()
	}
	return 0
}

func mustConfig(m *Manager, root string) *Config {
	c, _ := m.Config(root)
	return c
}

func (o *op) makeSpare(s *spareSet, snap string) (*spare, error) {
	c, root := o.c, o.c.Root
	if err := o.ready(); err != nil {
		return nil, err
	}
	if _, ok := o.be.(backend.Renamer); !ok {
		return nil, fmt.Errorf("spare of %s: the %s backend cannot rename volumes: %w", root, o.be.Kind(), ErrUnsupported)
	}
	if snap == "" {
		var err error
		if snap, err = o.m.Current(root, mock.DefaultExt); err != nil {
			return nil, err
		}
	}
	snapVol := mock.SnapshotVolume(root, snap)
	sv := o.r.Find(snapVol)
	if sv == nil {
		return nil, notFound("snapshot", root+"/"+snap)
	}
	if o.underWarn() != nil {
		return nil, errNoSpareRoom
	}
	vol := newSpareName()
	mnt := filepath.Join(s.dir, vol)
	if err := o.begin(journal.Intent{Op: journal.SpareCreate, Volumes: []string{vol}, Mounts: []string{mnt}}); err != nil {
		return nil, err
	}
	v, err := o.be.Snapshot(o.mctx, c.Pool, snapVol, vol, backend.SnapshotOptions{Activate: true})
	if err != nil {
		return nil, fmt.Errorf("spare of %s/%s: %w", root, snap, err)
	}
	crashpoint.Hit("spare-create:after-clone")
	err = o.m.mountVolume(c, o.be, v, mnt)
	release(o.be, v)
	if err != nil {
		return nil, fmt.Errorf("spare of %s/%s: %w", root, snap, err)
	}
	crashpoint.Hit("spare-create:after-mount")
	v.Origin, v.Handle = snapVol, nil
	o.m.patch(c.Pool, v)
	return &spare{key: spareKey{root, snap}, vol: vol, mnt: mnt, origin: snapVol, originCreated: sv.Created, v: *v}, nil
}

// underWarn is nil when the pool is under its warn threshold (and
// healthy): the only room spares may take.
func (o *op) underWarn() error {
	r := o.r
	warn := r.WarnPercent
	if warn == 0 {
		warn = o.m.opts.WarnPercent
	}
	if r.Health != "" || r.DataPercent >= warn || r.MetadataPercent >= warn {
		return errNoSpareRoom
	}
	return nil
}

func newSpareName() string {
	b := make([]byte, 8)
	rand.Read(b)
	return SparePrefix + hex.EncodeToString(b)
}

// takeSpare hands a spare of (root, snap) over as workdir ext, when the
// keeper has a fresh one; ok false when there was none or it could not
// be handed over (what was half done is rolled back; the caller clones
// as usual).
func (o *op) takeSpare(snap, ext, vol, target string) (*WorkdirState, bool) {
	s := o.m.keeper()
	if s == nil {
		return nil, false
	}
	c, root := o.c, o.c.Root
	k := spareKey{root, snap}
	// Once this one is off the list: the refill counts what is left.
	defer s.noteUse(k)
	snapVol := mock.SnapshotVolume(root, snap)
	sv := o.r.Find(snapVol)
	for {
		sp := s.pop(k)
		if sp == nil {
			return nil, false
		}
		if sv == nil || !sv.Created.Equal(sp.originCreated) || !o.m.isMounted(sp.mnt) {
			// Its snapshot was made again since, or the spare was taken
			// from under us (a scrub by another process).
			o.m.removeSpare(o.mctx, sp)
			continue
		}
		w, err := o.handOver(sp, snap, ext, vol, target)
		if err == nil {
			s.taken.Add(1)
			return w, true
		}
		o.m.log.Warn("hand a warm spare over; cloning instead", "config", root, "ext", ext, "err", err)
		o.abort(err)
		o.m.patch(c.Pool, nil, sp.vol)
		return nil, false
	}
}

func (o *op) handOver(sp *spare, snap, ext, vol, target string) (*WorkdirState, error) {
	c, root := o.c, o.c.Root
	err := o.begin(journal.Intent{Op: journal.WorkdirCreate, Volumes: []string{sp.vol, vol}, Mounts: []string{sp.mnt, target},
		Records: []journal.Record{o.record(ext, sp.origin)}})
	if err != nil {
		return nil, err
	}
	crashpoint.Hit("spare-take:before-rename")
	if err := o.be.(backend.Renamer).Rename(o.mctx, c.Pool, sp.vol, vol); err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	crashpoint.Hit("spare-take:after-rename")
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	if err := o.m.mounter.(Mover).Move(sp.mnt, target); err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	os.Remove(sp.mnt)
	crashpoint.Hit("spare-take:after-move")
	if err := c.dirs().WriteSnapinfo(ext, sp.origin); err != nil {
		o.m.log.Warn("record current snapshot of new workdir", "err", err)
	}
	crashpoint.Hit("spare-take:after-record")
	v := sp.v
	v.Name, v.Created = vol, time.Now().UTC()
	o.m.patch(c.Pool, &v, sp.vol)
	return &WorkdirState{Root: root, Ext: ext, LV: vol, Snapshot: snap, Created: v.Created,
		VirtualSize: v.VirtualSize, Mountpoint: target, Mounted: true, Device: v.Mount.Source}, nil
}

// abort rolls back the operation's intent now, so the operation can go
// on another way under the same lock.
func (o *op) abort(err error) {
	e := o.entry
	if e == nil {
		return
	}
	o.entry = nil
	if uerr := o.m.undo(o.mctx, &e.Intent); uerr != nil {
		o.m.log.Error("roll back a failed hand-over", "root", e.Root, "err", uerr, "after", err)
		e.Release()
		o.m.markDirty()
		return
	}
	e.Done()
	o.m.markDirty()
}

// removeSpare removes one spare the keeper took off its lists: a
// journaled removal, finished by recovery if the process dies in it.
func (m *Manager) removeSpare(ctx context.Context, sp *spare) {
	c, err := m.Config(sp.key.root)
	if err != nil {
		m.log.Warn("remove a warm spare", "volume", sp.vol, "err", err)
		return
	}
	spec, err := c.BackendSpec()
	if err != nil {
		return
	}
	be, err := m.backend(spec)
	if err != nil {
		return
	}
	if err := m.removeSpareVolume(ctx, be, spec, c.Pool, sp.key.root, sp.vol); err != nil {
		m.log.Warn("remove a warm spare", "volume", sp.vol, "err", err)
	}
}

// removeSpareVolume unmounts (lazily) and removes a spare's volume under
// a journaled removal.
func (m *Manager) removeSpareVolume(ctx context.Context, be backend.Backend, spec backend.Spec, pool, root, vol string) error {
	mnt := filepath.Join(m.sparesDir(), vol)
	e, err := m.journal.Begin(journal.Intent{Op: journal.SpareRemove, Root: root, Pool: pool, Backend: spec,
		Volumes: []string{vol}, Mounts: []string{mnt}})
	if err != nil {
		return err
	}
	m.markDirty()
	var errs []error
	if err := m.mounter.Unmount(mnt, true); err != nil {
		errs = append(errs, err)
	}
	crashpoint.Hit("spare-remove:after-unmount")
	if len(errs) == 0 {
		if err := be.Remove(context.WithoutCancel(ctx), pool, vol); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	os.Remove(mnt)
	m.patch(pool, nil, vol)
	if len(errs) > 0 {
		e.Release()
		return errors.Join(errs...)
	}
	e.Done()
	m.markDirty()
	return nil
}

// sparesOf lists the spare volumes of a pool report whose origin match
// accepts.
func sparesOf(r *backend.PoolReport, match func(origin string) bool) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, v := range r.Volumes {
		if IsSpare(v.Name) && match(v.Origin) {
			out = append(out, v.Name)
		}
	}
	return out
}

// sparesForRemoval takes the keeper's spares that match off its lists (so
// nobody hands them over) and returns the volumes and mounts of every
// spare in r that match, for an intent that removes them.
func (m *Manager) sparesForRemoval(r *backend.PoolReport, match func(origin string) bool) (vols, mounts []string) {
	if s := m.keeper(); s != nil {
		s.take(func(sp *spare) bool { return match(sp.origin) })
		s.mu.Lock()
		for k := range s.hot {
			if match(mock.SnapshotVolume(k.root, k.snap)) {
				delete(s.hot, k)
			}
		}
		s.mu.Unlock()
	}
	for _, v := range sparesOf(r, match) {
		vols = append(vols, v)
		mounts = append(mounts, filepath.Join(m.sparesDir(), v))
	}
	return vols, mounts
}

// dropPoolSpares removes every spare this process keeps in a pool (a
// user's volume needs the room).
func (m *Manager) dropPoolSpares(ctx context.Context, pool string) bool {
	s := m.keeper()
	if s == nil {
		return false
	}
	var taken []*spare
	for _, sp := range s.take(func(*spare) bool { return true }) {
		if c, err := m.Config(sp.key.root); err == nil && c.Pool == pool {
			taken = append(taken, sp)
		} else {
			s.mu.Lock()
			s.ready[sp.key] = append(s.ready[sp.key], sp)
			s.mu.Unlock()
		}
	}
	for _, sp := range taken {
		m.removeSpare(ctx, sp)
	}
	return len(taken) > 0
}

// sweepSpares removes the spares a keeper that is gone left in the pools
// this Manager has scanned, and the private directory's mounts, when no
// process keeps spares now.
func (m *Manager) sweepSpares(ctx context.Context) {
	if m.keeper() != nil {
		return
	}
	found := false
	for _, p := range m.poolEntries() {
		found = found || len(sparesOf(m.report(p.name), func(string) bool { return true })) > 0
	}
	if !found {
		if _, err := os.Stat(m.sparesDir()); err != nil || !isMountpoint(m.sparesDir()) {
			return
		}
	}
	l, err := lock.TryLock(m.sparesLockPath(), true)
	if err != nil || l == nil {
		return
	}
	defer l.Release()
	m.sweepSparesLocked(ctx)
}

// sweepSparesLocked is sweepSpares for the holder of the spares lock.
func (m *Manager) sweepSparesLocked(ctx context.Context) {
	known := map[string]bool{}
	for _, c := range m.Configs() {
		known[c.Root] = true
	}
	roots := make([]string, 0, len(known))
	for r := range known {
		roots = append(roots, r)
	}
	for _, p := range m.poolEntries() {
		for _, vol := range sparesOf(m.report(p.name), func(string) bool { return true }) {
			root := ""
			if v := m.report(p.name).Find(vol); v != nil {
				if vn, ok := mock.ParseVolume(v.Origin, roots); ok {
					root = vn.Root
				}
			}
			m.log.Info("removing a warm spare a keeper left", "pool", p.name, "volume", vol)
			if err := m.removeSpareVolume(ctx, p.backend, p.spec, p.name, root, vol); err != nil {
				m.log.Warn("remove a warm spare a keeper left", "volume", vol, "err", err)
			}
		}
	}
	dir := m.sparesDir()
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			mnt := filepath.Join(dir, e.Name())
			m.mounter.Unmount(mnt, true)
			os.Remove(mnt)
		}
	}
	if isMountpoint(dir) {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			m.log.Warn("unmount the spares directory", "dir", dir, "err", err)
		}
	}
	os.Remove(dir)
}
