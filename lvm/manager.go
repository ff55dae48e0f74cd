package lvm

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Options configure a Manager.
type Options struct {
	// StateDir holds thinroot's own files: lock files, intents, init
	// status, and (file and btrfs backends) the pools. Default
	// /var/lib/thinroot.
	StateDir string
	// Basedir is used for configs found only through their volumes.
	Basedir string
	// WarnPercent and RefusePercent are the thresholds new pools get.
	WarnPercent, RefusePercent float64
	Log                        *slog.Logger
	// Open opens the backend a spec names: the registry (backend.Open)
	// when nil. Tests hand in backends made their own way.
	Open func(backend.Spec) (backend.Backend, error)
	// Mounter mounts volumes at mock's paths: the host's when nil.
	Mounter Mounter
	// Discover names backends whose pools the Manager lists even when no
	// config names them (lvm2 backends need their volume group; those
	// without settings are always looked at).
	Discover []backend.Spec
	// ReadOnly makes no state directory: for commands that only list.
	ReadOnly bool
}

// DefaultStateDir is where thinroot keeps its files unless told otherwise.
const DefaultStateDir = "/var/lib/thinroot"

// Default thresholds (mock warns at 75 % and refuses at 90 %).
const (
	DefaultWarnPercent   = backend.DefaultWarnPercent
	DefaultRefusePercent = backend.DefaultRefusePercent
)

// Manager holds mock's model on top of the backends: names, current
// snapshots, locks, the size check, mounting and scrub. It keeps the
// last scan of every pool and answers questions from it, so reading the
// model costs no backend call; operations patch it, and Refresh (on an
// interval, by the caller) rescans.
type Manager struct {
	opts    Options
	log     *slog.Logger
	journal *journal.Journal
	mounter Mounter

	mu       sync.Mutex
	configs  map[string]*Config
	pools    map[string]*poolEntry
	backends map[string]backend.Backend // by Spec.String()
	holds    map[string]string          // root+"/"+ext -> who
	reaped   map[string]bool            // dead intents Refresh tried to finish
	spares   *spareSet                  // nil unless this process keeps spares (spares.go)
	dirty    bool
	// changed is closed and replaced whenever a new State is published.
	changed chan struct{}

	// pubMu orders publications; it is never held with mu while the
	// disk is read (publish.go).
	pubMu sync.Mutex
	gen   uint64
	state atomic.Pointer[State]
}

type poolEntry struct {
	name    string
	spec    backend.Spec
	backend backend.Backend
	report  *backend.PoolReport
	err     error
	// patches counts operations' patches of report; a scan that started
	// before one must not overwrite it.
	patches uint64
	// opened is set once the pool's leftovers have been dealt with
	// (recover.go): the first scan of a pool in a Manager does that.
	opened bool
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
	if opts.Open == nil {
		env := backend.Env{StateDir: opts.StateDir, Log: opts.Log}
		opts.Open = func(s backend.Spec) (backend.Backend, error) { return backend.Open(env, s) }
	}
	if opts.Mounter == nil {
		opts.Mounter = hostMounter{}
	}
	for _, d := range []string{opts.StateDir, filepath.Join(opts.StateDir, "locks"), filepath.Join(opts.StateDir, "status")} {
		if opts.ReadOnly {
			break
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	m := &Manager{
		opts:     opts,
		log:      opts.Log,
		journal:  journal.New(filepath.Join(opts.StateDir, "intents")),
		mounter:  opts.Mounter,
		configs:  map[string]*Config{},
		pools:    map[string]*poolEntry{},
		backends: map[string]backend.Backend{},
		holds:    map[string]string{},
		reaped:   map[string]bool{},
		changed:  make(chan struct{}),
	}
	m.state.Store(&State{Taken: time.Now()})
	return m, nil
}

// backend opens (once) and returns the backend a spec names.
func (m *Manager) backend(s backend.Spec) (backend.Backend, error) {
	key := s.String()
	m.mu.Lock()
	be, ok := m.backends[key]
	m.mu.Unlock()
	if ok {
		return be, nil
	}
	be, err := m.opts.Open(s)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.backends[key]; ok {
		return prev, nil
	}
	m.backends[key] = be
	return be, nil
}

// AddConfig registers a config. Its pool joins the model at the next
// Refresh.
func (m *Manager) AddConfig(c Config) error {
	if err := c.Normalize(); err != nil {
		return err
	}
	spec, err := c.BackendSpec()
	if err != nil {
		return err
	}
	be, err := m.backend(spec)
	if err != nil {
		return fmt.Errorf("config %s: %w", c.Root, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pools[c.Pool]; ok && p.spec.String() != spec.String() {
		return fmt.Errorf("config %s: pool %s is a %s pool, the config says %s", c.Root, c.Pool, p.spec, spec)
	}
	m.configs[c.Root] = &c
	if _, ok := m.pools[c.Pool]; !ok {
		m.pools[c.Pool] = &poolEntry{name: c.Pool, spec: spec, backend: be}
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
	if mock.ValidateRoot(root) != nil {
		return nil
	}
	known := make([]string, 0, len(m.configs))
	for r := range m.configs {
		known = append(known, r)
	}
	for _, n := range sortedKeys(m.pools) {
		p := m.pools[n]
		if p.report == nil {
			continue
		}
		for _, v := range p.report.Volumes {
			if vn, ok := mock.ParseVolume(v.Name, known); ok && v.Thin && vn.Root == root {
				c := &Config{Root: root, Pool: n, Backend: p.spec.Kind, BackendOptions: p.spec.Options,
					Basedir: m.opts.Basedir, UniqueExt: mock.DefaultExt, CheckSize: true}
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// State returns the last published picture. It never blocks on a backend.
// A publication that is under way may already hold a change this caller
// knows of (a workdir it just made): State waits for it rather than
// return the State before it.
func (m *Manager) State() *State {
	m.mu.Lock()
	dirty := m.dirty
	m.mu.Unlock()
	if dirty {
		return m.publish()
	}
	m.pubMu.Lock()
	m.pubMu.Unlock()
	return m.state.Load()
}

// Changed returns a channel closed at the next publication of a State.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
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

// statusPath is where a config's last init failure is recorded.
func (m *Manager) statusPath(root string) string {
	return filepath.Join(m.opts.StateDir, "status", root+".failed")
}

func (m *Manager) configLockPath(root string) string {
	return filepath.Join(m.opts.StateDir, "locks", "config-"+root+".lock")
}

func (m *Manager) poolLockPath(pool string) string {
	return filepath.Join(m.opts.StateDir, "locks", "pool-"+pool+".lock")
}
