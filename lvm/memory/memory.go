// Package memory is a backend whose pools and volumes are records in
// memory, for the Manager's tests that run without root: its volumes hold
// no files, and its Mounter keeps a mount table of its own instead of
// mounting (a "mounted" volume is an empty directory at mock's path). So
// that a test and its helper processes (run to be killed half way) share
// one world, the whole picture is written to one JSON file in the state
// directory after each change and read back before each call, under a
// lock. It is test support: no command links it in.
//
// A helper process can be told to die inside a call (KillEnv), which lets
// recovery be tested without crash points compiled in.
package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Kind is the backend's name.
const Kind = "memory"

// KillEnv names a call at which the process kills itself with SIGKILL:
// "<before|after>-<call>", call one of create, snapshot, remove, mount,
// unmount (e.g. "after-snapshot").
const KillEnv = "THINROOT_MEMORY_KILL"

func init() {
	backend.Register(backend.Kind{Name: Kind, Open: func(env backend.Env, _ map[string]string) (backend.Backend, error) {
		return New(env.StateDir), nil
	}})
}

// world is everything, as saved.
type world struct {
	Pools  map[string]*pool  `json:"pools"`
	Mounts map[string]string `json:"mounts"` // target -> "pool/volume"
}

type pool struct {
	Size          int64              `json:"size"`
	Used          int64              `json:"used"` // what Fill says
	WarnPercent   float64            `json:"warn_percent"`
	RefusePercent float64            `json:"refuse_percent"`
	Volumes       map[string]*volume `json:"volumes"`
}

type volume struct {
	Origin   string    `json:"origin,omitempty"`
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
	Tags     []string  `json:"tags,omitempty"`
	ReadOnly bool      `json:"read_only,omitempty"`
}

// store is the world's file.
type store struct{ dir string }

func (s store) path() string { return filepath.Join(s.dir, "world.json") }

// update runs fn on the world under the lock and saves what it changed.
func (s store) update(ctx context.Context, fn func(w *world) error) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	l, err := lock.Lock(ctx, filepath.Join(s.dir, "world.lock"), true, nil)
	if err != nil {
		return err
	}
	defer l.Release()
	w, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(w); err != nil {
		return err
	}
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.path(), data, 0o644)
}

// read returns a copy of the world (no lock: the file is replaced whole).
func (s store) read() (*world, error) { return s.load() }

func (s store) load() (*world, error) {
	w := &world{Pools: map[string]*pool{}, Mounts: map[string]string{}}
	data, err := os.ReadFile(s.path())
	if errors.Is(err, os.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, w); err != nil {
		return nil, err
	}
	if w.Pools == nil {
		w.Pools = map[string]*pool{}
	}
	if w.Mounts == nil {
		w.Mounts = map[string]string{}
	}
	return w, nil
}

// maybeKill dies at the call KillEnv names.
func maybeKill(when, call string) {
	if os.Getenv(KillEnv) == when+"-"+call {
		os.Stderr.WriteString("memory backend: killed " + when + " " + call + "\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// Backend implements backend.Backend in memory.
type Backend struct{ s store }

var _ backend.Backend = (*Backend)(nil)

// New returns the memory backend of a state directory.
func New(stateDir string) *Backend { return &Backend{s: store{dir: filepath.Join(stateDir, "memory")}} }

// Kind implements backend.Backend.
func (b *Backend) Kind() string { return Kind }

// Capabilities implements backend.Backend: directory volumes (nothing to
// format), snapshots read-only, no fixed size.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{ReadOnlySnapshots: true}
}

// CreatePool implements backend.Backend.
func (b *Backend) CreatePool(ctx context.Context, spec backend.PoolSpec) error {
	if err := mock.ValidatePool(spec.Name); err != nil {
		return err
	}
	return b.s.update(ctx, func(w *world) error {
		if _, ok := w.Pools[spec.Name]; ok {
			return fmt.Errorf("memory pool %s: %w", spec.Name, backend.ErrExists)
		}
		p := &pool{Size: spec.Size, WarnPercent: spec.WarnPercent, RefusePercent: spec.RefusePercent, Volumes: map[string]*volume{}}
		if p.Size <= 0 {
			p.Size = 1 << 30
		}
		w.Pools[spec.Name] = p
		return nil
	})
}

// RemovePool implements backend.Backend.
func (b *Backend) RemovePool(ctx context.Context, name string) error {
	return b.s.update(ctx, func(w *world) error {
		p, ok := w.Pools[name]
		if !ok {
			return fmt.Errorf("memory pool %s: %w", name, backend.ErrNotFound)
		}
		if len(p.Volumes) > 0 {
			return fmt.Errorf("memory pool %s has %d volumes: %w", name, len(p.Volumes), backend.ErrNotEmpty)
		}
		delete(w.Pools, name)
		return nil
	})
}

// Pools implements backend.Backend.
func (b *Backend) Pools(ctx context.Context) ([]string, error) {
	w, err := b.s.read()
	if err != nil {
		return nil, err
	}
	var out []string
	for n := range w.Pools {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Scan implements backend.Backend. A volume counts 1 MiB of the pool, so
// that figures move; Fill sets the rest.
func (b *Backend) Scan(ctx context.Context, name string) (*backend.PoolReport, error) {
	w, err := b.s.read()
	if err != nil {
		return nil, err
	}
	p, ok := w.Pools[name]
	if !ok {
		return nil, fmt.Errorf("memory pool %s: %w", name, backend.ErrNotFound)
	}
	r := &backend.PoolReport{Name: name, Backend: Kind, SizeBytes: p.Size, MetadataLabel: "none",
		WarnPercent: p.WarnPercent, RefusePercent: p.RefusePercent, Scanned: time.Now()}
	for n, v := range p.Volumes {
		r.Volumes = append(r.Volumes, backend.Volume{Name: n, Pool: name, Origin: v.Origin, VirtualSize: v.Size,
			UsedBytes: 1 << 20, Created: v.Created, Tags: v.Tags, Thin: true, Active: true, Mount: mountOf(name, n)})
	}
	sort.Slice(r.Volumes, func(i, j int) bool { return r.Volumes[i].Name < r.Volumes[j].Name })
	r.UsedBytes = min(p.Size, p.Used+int64(len(p.Volumes))<<20)
	r.DataPercent = 100 * float64(r.UsedBytes) / float64(p.Size)
	if r.UsedBytes >= p.Size {
		r.Health = "out of data space"
	}
	return r, nil
}

// mountOf is what the memory Mounter mounts for a volume.
func mountOf(pool, name string) backend.Mount {
	return backend.Mount{Type: Kind, Source: pool + "/" + name}
}

// Create implements backend.Backend.
func (b *Backend) Create(ctx context.Context, poolName, name string, size int64) (*backend.Volume, error) {
	return b.add(ctx, "create", poolName, name, "", size, backend.SnapshotOptions{Activate: true})
}

// Snapshot implements backend.Backend.
func (b *Backend) Snapshot(ctx context.Context, poolName, origin, name string, opts backend.SnapshotOptions) (*backend.Volume, error) {
	return b.add(ctx, "snapshot", poolName, name, origin, 0, opts)
}

func (b *Backend) add(ctx context.Context, call, poolName, name, origin string, size int64, opts backend.SnapshotOptions) (*backend.Volume, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("volume name %q: %w", name, backend.ErrInvalidName)
	}
	maybeKill("before", call)
	var out backend.Volume
	err := b.s.update(ctx, func(w *world) error {
		p, ok := w.Pools[poolName]
		if !ok {
			return fmt.Errorf("memory pool %s: %w", poolName, backend.ErrNotFound)
		}
		if _, ok := p.Volumes[name]; ok {
			return fmt.Errorf("volume %s: %w", name, backend.ErrExists)
		}
		if p.Used+int64(len(p.Volumes)+1)<<20 > p.Size {
			return fmt.Errorf("memory pool %s: %w", poolName, backend.ErrPoolFull)
		}
		v := &volume{Origin: origin, Size: size, Created: time.Now().UTC(), Tags: opts.Tags, ReadOnly: !opts.Activate}
		if origin != "" {
			o, ok := p.Volumes[origin]
			if !ok {
				return fmt.Errorf("snapshot origin %s: %w", origin, backend.ErrNotFound)
			}
			v.Size = o.Size
		}
		p.Volumes[name] = v
		out = backend.Volume{Name: name, Pool: poolName, Origin: origin, VirtualSize: v.Size, Created: v.Created,
			Tags: v.Tags, Thin: true, Active: true, Mount: mountOf(poolName, name)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	maybeKill("after", call)
	return &out, nil
}

// Activate implements backend.Backend.
func (b *Backend) Activate(ctx context.Context, poolName, name string) (*backend.Volume, error) {
	r, err := b.Scan(ctx, poolName)
	if err != nil {
		return nil, err
	}
	v := r.Find(name)
	if v == nil {
		return nil, fmt.Errorf("volume %s: %w", name, backend.ErrNotFound)
	}
	return v, nil
}

// Remove implements backend.Backend; a mounted volume is busy.
func (b *Backend) Remove(ctx context.Context, poolName, name string) error {
	maybeKill("before", "remove")
	err := b.s.update(ctx, func(w *world) error {
		p, ok := w.Pools[poolName]
		if !ok {
			return fmt.Errorf("memory pool %s: %w", poolName, backend.ErrNotFound)
		}
		if _, ok := p.Volumes[name]; !ok {
			return fmt.Errorf("volume %s: %w", name, backend.ErrNotFound)
		}
		for target, src := range w.Mounts {
			if src == poolName+"/"+name {
				return fmt.Errorf("volume %s is mounted at %s: %w", name, target, backend.ErrBusy)
			}
		}
		delete(p.Volumes, name)
		return nil
	})
	if err == nil {
		maybeKill("after", "remove")
	}
	return err
}

// Fill makes the pool's figures say share of it is used, as if data were
// written.
func Fill(stateDir, poolName string, share float64) error {
	b := New(stateDir)
	return b.s.update(context.Background(), func(w *world) error {
		p, ok := w.Pools[poolName]
		if !ok {
			return fmt.Errorf("memory pool %s: %w", poolName, backend.ErrNotFound)
		}
		p.Used = int64(share * float64(p.Size))
		return nil
	})
}

// Mounter mounts memory volumes into its own table: "mounting" makes the
// mount point (an empty directory), "unmounting" empties it again.
type Mounter struct{ s store }

// NewMounter returns the mounter of a state directory's memory world.
func NewMounter(stateDir string) *Mounter {
	return &Mounter{s: store{dir: filepath.Join(stateDir, "memory")}}
}

// Mount records a memory volume as mounted at target.
func (m *Mounter) Mount(spec backend.Mount, target, options string) error {
	if spec.Type != Kind {
		return fmt.Errorf("memory mounter: cannot mount %q (%s)", spec.Source, spec.Type)
	}
	maybeKill("before", "mount")
	err := m.s.update(context.Background(), func(w *world) error {
		if _, ok := w.Mounts[target]; ok {
			return fmt.Errorf("mount %s: something is already mounted there: %w", target, backend.ErrBusy)
		}
		w.Mounts[target] = spec.Source
		return nil
	})
	if err == nil {
		maybeKill("after", "mount")
	}
	return err
}

// Discard is Unmount: the memory backend has no cache to drop.
func (m *Mounter) Discard(target string) error { return m.Unmount(target, false) }

// Unmount drops target from the table and empties the directory.
func (m *Mounter) Unmount(target string, lazy bool) error {
	maybeKill("before", "unmount")
	err := m.s.update(context.Background(), func(w *world) error {
		if _, ok := w.Mounts[target]; !ok {
			return nil
		}
		delete(w.Mounts, target)
		ents, _ := os.ReadDir(target)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(target, e.Name()))
		}
		return nil
	})
	if err == nil {
		maybeKill("after", "unmount")
	}
	return err
}

// Mounted reads the table once.
func (m *Mounter) Mounted() (func(string) bool, error) {
	w, err := m.s.read()
	if err != nil {
		return func(string) bool { return false }, err
	}
	return func(p string) bool { _, ok := w.Mounts[filepath.Clean(p)]; return ok }, nil
}

// Targets lists the mount points in the table, for leak checks.
func (m *Mounter) Targets() []string {
	w, _ := m.s.read()
	var out []string
	for t := range w.Mounts {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Thaw does nothing: nothing in memory freezes.
func (m *Mounter) Thaw(string) {}
