package lvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/mount"
)

// Options configure a Manager.
type Options struct {
	// StateDir holds thinroot's own files: lock files, intents, init
	// status, and (file backend) the pools. Default /var/lib/thinroot.
	StateDir string
	// Backends by key: "file", or "lvm2:<vg>" (see BackendKey).
	Backends map[string]Backend
	// Basedir is used for configs found only through their volumes.
	Basedir string
	// WarnPercent and RefusePercent are the thresholds new pools get.
	WarnPercent, RefusePercent float64
	Log                        *slog.Logger
}

// DefaultStateDir is where thinroot keeps its files unless told otherwise.
const DefaultStateDir = "/var/lib/thinroot"

// BackendKey names the backend a config uses.
func BackendKey(c *Config) string {
	if c.Backend == "lvm2" {
		return "lvm2:" + c.VolumeGroup
	}
	return c.Backend
}

// Manager holds mock's model on top of the backends: names, current
// snapshots, locks, the size check, mkfs, mount and scrub. It keeps the
// last scan of every pool and answers questions from it, so reading the
// model costs no backend call; operations patch it, and Refresh (on an
// interval, by the caller) rescans.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	configs map[string]*Config
	pools   map[string]*poolEntry
	holds   map[string]string // root+"/"+ext -> who
	gen     uint64
	dirty   bool

	state atomic.Pointer[State]
	// changed is closed and replaced whenever a new State is published.
	changed chan struct{}
}

type poolEntry struct {
	name    string
	key     string // backend key
	backend Backend
	report  *PoolReport
	err     error
	// patches counts operations' patches of report; a scan that started
	// before one must not overwrite it.
	patches uint64
}

// NewManager returns a Manager. It does not touch the backends; call
// Recover and Refresh (or Reconcile) to load the picture.
func NewManager(opts Options) (*Manager, error) {
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if opts.Basedir == "" {
		opts.Basedir = DefaultBasedir
	}
	if opts.WarnPercent == 0 {
		opts.WarnPercent = DefaultWarnPercent
	}
	if opts.RefusePercent == 0 {
		opts.RefusePercent = DefaultRefusePercent
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	for _, d := range []string{opts.StateDir, filepath.Join(opts.StateDir, "locks"), filepath.Join(opts.StateDir, "status")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	m := &Manager{
		opts:    opts,
		log:     opts.Log,
		configs: map[string]*Config{},
		pools:   map[string]*poolEntry{},
		holds:   map[string]string{},
		changed: make(chan struct{}),
	}
	m.state.Store(&State{Taken: time.Now()})
	return m, nil
}

// AddConfig registers a config. Its pool joins the model at the next
// Refresh.
func (m *Manager) AddConfig(c Config) error {
	if err := c.Normalize(); err != nil {
		return err
	}
	key := BackendKey(&c)
	be, ok := m.opts.Backends[key]
	if !ok {
		return fmt.Errorf("config %s: backend %s is not available", c.Root, key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pools[c.Pool]; ok && p.key != key {
		return fmt.Errorf("config %s: pool %s is a %s pool, the config says %s", c.Root, c.Pool, p.key, key)
	}
	m.configs[c.Root] = &c
	if _, ok := m.pools[c.Pool]; !ok {
		m.pools[c.Pool] = &poolEntry{name: c.Pool, key: key, backend: be}
	}
	m.dirty = true
	return nil
}

// Configs returns the registered configs, sorted by root.
func (m *Manager) Configs() []Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Config, 0, len(m.configs))
	for _, c := range m.configs {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Root < out[j].Root })
	return out
}

// Config returns a registered config.
func (m *Manager) Config(root string) (*Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.configs[root]
	if !ok {
		if c = m.discoveredConfig(root); c == nil {
			return nil, notFound("config", root)
		}
	}
	cp := *c
	return &cp, nil
}

// discoveredConfig stands in for a config that has volumes in a pool but
// no config file (made by another tool, or by the CLI with flags): mock's
// defaults, the Manager's basedir, and the filesystem read off the volume
// when it is mounted. Caller holds m.mu.
func (m *Manager) discoveredConfig(root string) *Config {
	if ValidateRoot(root) != nil {
		return nil
	}
	known := make([]string, 0, len(m.configs))
	for r := range m.configs {
		known = append(known, r)
	}
	names := make([]string, 0, len(m.pools))
	for n := range m.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := m.pools[n]
		if p.report == nil {
			continue
		}
		for _, v := range p.report.Volumes {
			if vn, ok := ParseLV(v.Name, known); ok && v.Thin && vn.Root == root {
				c := &Config{Root: root, Pool: n, Backend: p.backend.Kind(), Basedir: m.opts.Basedir,
					UniqueExt: DefaultExt, CheckSize: true}
				if vg, ok := strings.CutPrefix(p.key, "lvm2:"); ok {
					c.VolumeGroup = vg
				}
				if err := c.Normalize(); err != nil {
					return nil
				}
				c.Filesystem, c.MkfsCommand = "", ""
				return c
			}
		}
	}
	return nil
}

func (m *Manager) backendFor(c *Config) Backend { return m.opts.Backends[BackendKey(c)] }

// State returns the last published picture. It never blocks on a backend.
func (m *Manager) State() *State {
	m.mu.Lock()
	dirty := m.dirty
	m.mu.Unlock()
	if dirty {
		m.publish()
	}
	return m.state.Load()
}

// Changed returns a channel closed at the next publication of a State.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Refresh rescans every pool (one backend report each) and publishes a
// new State.
func (m *Manager) Refresh(ctx context.Context) (*State, error) {
	if err := m.Recover(ctx); err != nil {
		m.log.Warn("finishing interrupted operations", "err", err)
	}
	m.discover(ctx)
	m.mu.Lock()
	entries := make([]*poolEntry, 0, len(m.pools))
	for _, p := range m.pools {
		entries = append(entries, p)
	}
	m.mu.Unlock()
	var errs []error
	for _, p := range entries {
		m.mu.Lock()
		seen := p.patches
		m.mu.Unlock()
		r, err := p.backend.Scan(ctx, p.name)
		m.mu.Lock()
		if p.patches != seen {
			// An operation of this process changed the pool while the
			// scan ran; the scan may predate it. Keep the patched report
			// and leave the pool to the next Refresh.
			m.mu.Unlock()
			continue
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			p.err = err
			errs = append(errs, err)
		} else {
			p.report, p.err = r, nil
		}
		m.dirty = true
		m.mu.Unlock()
	}
	return m.publish(), errors.Join(errs...)
}

// discover adds pools the backends know of that no config names.
func (m *Manager) discover(ctx context.Context) {
	for key, be := range m.opts.Backends {
		names, err := be.Pools(ctx)
		if err != nil {
			m.log.Debug("list pools", "backend", key, "err", err)
			continue
		}
		m.mu.Lock()
		for _, n := range names {
			if _, ok := m.pools[n]; !ok {
				m.pools[n] = &poolEntry{name: n, key: key, backend: be}
			}
		}
		m.mu.Unlock()
	}
}

// rescan refreshes one pool; operations call it when they need fresh
// figures (after taking the init lock, before scrub).
func (m *Manager) rescan(ctx context.Context, pool string) (*PoolReport, error) {
	m.mu.Lock()
	p, ok := m.pools[pool]
	m.mu.Unlock()
	if !ok {
		return nil, notFound("pool", pool)
	}
	m.mu.Lock()
	seen := p.patches
	m.mu.Unlock()
	r, err := p.backend.Scan(ctx, pool)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	m.mu.Lock()
	// As in Refresh: a scan older than another operation's patch is
	// returned to the caller but does not replace the patched report.
	if p.patches == seen {
		p.report, p.err = r, nil
		m.dirty = true
	}
	m.mu.Unlock()
	return r, err
}

// invalidate marks a pool for rescan at the next Refresh or operation.
func (m *Manager) invalidate(pool string) {
	m.mu.Lock()
	m.dirty = true
	m.mu.Unlock()
}

// patch applies a change to a pool's cached report, so an operation costs
// no extra scan.
func (m *Manager) patch(pool string, add *Volume, remove ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[pool]
	if !ok || p.report == nil {
		return
	}
	r := *p.report
	vols := make([]Volume, 0, len(r.Volumes)+1)
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
func (m *Manager) report(pool string) *PoolReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pools[pool]; ok {
		return p.report
	}
	return nil
}

// Hold marks a workdir as used (by a build): rmdir and scrub get ErrBusy.
func (m *Manager) Hold(root, ext, who string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := root + "/" + ext
	if h, ok := m.holds[k]; ok {
		return fmt.Errorf("workdir %s.%s held by %s: %w", root, ext, h, ErrBusy)
	}
	m.holds[k] = who
	m.dirty = true
	return nil
}

// Unhold releases Hold.
func (m *Manager) Unhold(root, ext string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.holds, root+"/"+ext)
	m.dirty = true
}

func (m *Manager) heldBy(root, ext string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holds[root+"/"+ext]
}

// lockConfig serializes thinroot's operations on one config across
// goroutines and processes.
// Once it holds the lock it finishes the config's operations that died
// half way, so no operation starts on top of another's leftovers.
func (m *Manager) lockConfig(ctx context.Context, c *Config) (*lock.Held, error) {
	return m.lockConfigSync(ctx, c, true)
}

// lockConfigCached is lockConfig without the rescan, for workdir creation,
// the one operation on a hot path with a budget of backend calls (2 lvm2
// commands): it needs no fresh picture, since the backend itself refuses a
// volume that exists and an origin that is gone, atomically, and a
// workdir another process made shows as its mount.
func (m *Manager) lockConfigCached(ctx context.Context, c *Config) (*lock.Held, error) {
	return m.lockConfigSync(ctx, c, false)
}

func (m *Manager) lockConfigSync(ctx context.Context, c *Config, sync bool) (*lock.Held, error) {
	l, err := lock.Lock(ctx, m.configLockPath(c.Root), true, func(lock.Holder) {
		m.log.Info("waiting for another thinroot operation on the config", "config", c.Root)
	})
	if err != nil {
		return nil, err
	}
	if err := m.recoverDead(ctx, c.Root, true); err != nil {
		l.Release()
		return nil, fmt.Errorf("config %s: finish an interrupted operation: %w", c.Root, err)
	}
	sweepSnapinfoTemps(c)
	if sync {
		if err := m.syncPool(ctx, c.Pool); err != nil {
			l.Release()
			return nil, fmt.Errorf("config %s: %w", c.Root, err)
		}
	}
	return l, nil
}

// syncPool rescans a pool for an operation that now holds its config's
// lock, so that it decides on what is on disk rather than on a report
// that another process (a second daemon, the CLI, mock) may have
// outdated while this one waited for the lock: a stale report let two
// processes both "remove" one workdir, or remove a snapshot that a
// workdir had just been cloned from.
func (m *Manager) syncPool(ctx context.Context, pool string) error {
	m.mu.Lock()
	p, ok := m.pools[pool]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	for try := 0; ; try++ {
		m.mu.Lock()
		seen := p.patches
		m.mu.Unlock()
		r, err := p.backend.Scan(ctx, pool)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("scan pool %s: %w", pool, err)
		}
		m.mu.Lock()
		// An operation of this process on another config of the pool may
		// have patched the report during the scan; scan again rather than
		// lose its patch (after a few tries the scan wins: that operation
		// rescans under its own lock anyway).
		if p.patches == seen || try >= 4 {
			p.report, p.err = r, nil
			// A Refresh whose scan began before this one must not
			// overwrite it.
			p.patches++
			m.dirty = true
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
	}
}

func (m *Manager) configLockPath(root string) string {
	return filepath.Join(m.opts.StateDir, "locks", "config-"+root+".lock")
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

// ensureSpace is checkSpace after growing the pool, when the config asks
// for autoextend, the backend can grow pools and the pool is over its warn
// threshold. A volume group without room is logged and the thresholds
// apply as they are.
func (m *Manager) ensureSpace(ctx context.Context, c *Config, r *PoolReport) error {
	if r != nil && c.AutoExtendStep > 0 {
		warn := r.WarnPercent
		if warn == 0 {
			warn = m.opts.WarnPercent
		}
		if ext, ok := m.backendFor(c).(Extender); ok && (r.DataPercent > warn || r.MetadataPercent > warn) {
			m.log.Info("pool over its warn threshold: extending it", "pool", r.Name,
				"data_percent", r.DataPercent, "metadata_percent", r.MetadataPercent, "step", c.AutoExtendStep)
			err := ext.Extend(context.WithoutCancel(ctx), r.Name, c.AutoExtendStep)
			switch {
			case err == nil:
				if nr, err := m.rescan(ctx, r.Name); err == nil && nr != nil {
					m.log.Info("pool extended", "pool", r.Name, "size_bytes", nr.SizeBytes, "data_percent", nr.DataPercent)
					r = nr
				}
			case errors.Is(err, ErrNoRoom):
				m.log.Warn("cannot extend the pool: its volume group has no room", "pool", r.Name, "err", err)
			default:
				m.log.Error("extend the pool", "pool", r.Name, "err", err)
			}
		}
	}
	return m.checkSpace(c, r)
}

// checkSpace applies the thresholds before a volume is made: over the
// refuse threshold it fails with a PoolFullError (or only warns when the
// config says check_size = False); over the warn threshold it warns.
func (m *Manager) checkSpace(c *Config, r *PoolReport) error {
	if r == nil {
		return nil
	}
	warn, refuse := r.WarnPercent, r.RefusePercent
	if warn == 0 {
		warn = m.opts.WarnPercent
	}
	if refuse == 0 {
		refuse = m.opts.RefusePercent
	}
	over := r.DataPercent > refuse || r.MetadataPercent > refuse
	if r.Health != "" || over {
		err := &PoolFullError{Pool: r.Name, DataPercent: r.DataPercent, MetadataPercent: r.MetadataPercent,
			RefusePercent: refuse, Reason: r.Health}
		if c.CheckSize || r.Health != "" {
			m.log.Warn("refusing a new volume", "pool", r.Name, "reason", err.Error())
			return err
		}
		m.log.Warn("pool over the refuse threshold; check_size is off, going on", "pool", r.Name, "detail", err.Error())
		return nil
	}
	if r.DataPercent > warn || r.MetadataPercent > warn {
		m.log.Warn("thin pool is nearly full; consider growing it", "pool", r.Name,
			"data_percent", r.DataPercent, "metadata_percent", r.MetadataPercent)
	}
	return nil
}

// findVolume looks a volume up in a report.
func findVolume(r *PoolReport, name string) *Volume {
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

// release gives an activation's hold back to the backend.
func release(be Backend, v *Volume) {
	if r, ok := be.(Releaser); ok && v != nil {
		r.Release(v)
	}
}

// mountVolume mounts an active volume at a config's root path.
func (m *Manager) mountVolume(c *Config, v *Volume, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if ok, _ := mount.IsMountpoint(target); ok {
		return fmt.Errorf("mount %s: something is already mounted there: %w", target, ErrBusy)
	}
	fstype := c.Filesystem
	if fstype == "" {
		var err error
		if fstype, err = mount.DetectFS(v.Device); err != nil {
			return err
		}
	}
	return mount.Device(v.Device, target, fstype, c.MountOptions)
}

// unmountRoot unmounts a workdir; a busy mount is ErrBusy.
func unmountRoot(target string, lazy bool) error {
	err := mount.Unmount(target, lazy)
	if err != nil && errors.Is(err, errBusySys) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// removeMountDirs removes a workdir's empty mount point and its parent when
// that is empty too; anything with files in it stays.
func removeMountDirs(c *Config, ext string) {
	os.Remove(c.RootPath(ext))
	os.Remove(c.WorkdirDir(ext))
}

// statusPath is where a config's last init failure is recorded.
func (m *Manager) statusPath(root string) string {
	return filepath.Join(m.opts.StateDir, "status", root+".failed")
}

// logWriter returns w or a writer into the log.
func (m *Manager) logWriter(w io.Writer) io.Writer {
	if w != nil {
		return w
	}
	return io.Discard
}
