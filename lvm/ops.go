package lvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/mount"
)

var errBusySys = unix.EBUSY

// opConfig validates a root and returns its registered config.
func (m *Manager) opConfig(root string) (*Config, error) {
	if err := ValidateRoot(root); err != nil {
		return nil, err
	}
	return m.Config(root)
}

// EnsurePool makes the config's pool exist, creating it if needed. Two
// processes (thinroot or mock) racing to create it end with one pool: the
// creator holds mock's per-config pool lock and thinroot's per-pool lock.
func (m *Manager) EnsurePool(ctx context.Context, root string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if m.report(c.Pool) != nil {
		return nil
	}
	be := m.backendFor(c)
	if _, err := m.rescan(ctx, c.Pool); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("pool %s: %w", c.Pool, err)
	}
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return fmt.Errorf("basedir: %w", err)
	}
	own, err := lock.Lock(ctx, filepath.Join(m.opts.StateDir, "locks", "pool-"+c.Pool+".lock"), true, func(lock.Holder) {
		m.log.Info("waiting for another process creating the pool", "pool", c.Pool)
	})
	if err != nil {
		return err
	}
	defer own.Release()
	mock, err := lock.Lock(ctx, c.PoolLockPath(), true, func(h lock.Holder) {
		m.log.Info("waiting for pool lock", "pool", c.Pool, "holder_pid", h.PID)
	})
	if err != nil {
		return err
	}
	defer mock.Release()
	if _, err := m.rescan(ctx, c.Pool); err == nil {
		return nil
	}
	size := c.PoolSize
	if size == 0 {
		size = c.Size
	}
	spec := PoolSpec{Name: c.Pool, Size: size, MetadataSize: c.PoolMetadataSize, Directory: c.PoolDirectory,
		WarnPercent: m.opts.WarnPercent, RefusePercent: m.opts.RefusePercent}
	crashpoint.Hit("pool-create:before")
	if err := be.CreatePool(context.WithoutCancel(ctx), spec); err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("create pool %s: %w", c.Pool, err)
	}
	crashpoint.Hit("pool-create:after")
	m.log.Info("pool ready", "pool", c.Pool, "backend", be.Kind())
	_, err = m.rescan(ctx, c.Pool)
	return err
}

// CreatePool makes a pool by spec on the given backend (thinroot pool create).
func (m *Manager) CreatePool(ctx context.Context, key string, spec PoolSpec) error {
	be, ok := m.opts.Backends[key]
	if !ok {
		return fmt.Errorf("backend %s is not available", key)
	}
	if err := ValidatePool(spec.Name); err != nil {
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
	own, err := lock.Lock(ctx, filepath.Join(m.opts.StateDir, "locks", "pool-"+spec.Name+".lock"), true, nil)
	if err != nil {
		return err
	}
	defer own.Release()
	if err := be.CreatePool(context.WithoutCancel(ctx), spec); err != nil {
		return fmt.Errorf("create pool %s: %w", spec.Name, err)
	}
	m.mu.Lock()
	if _, ok := m.pools[spec.Name]; !ok {
		m.pools[spec.Name] = &poolEntry{name: spec.Name, key: key, backend: be}
	}
	m.mu.Unlock()
	_, err = m.rescan(ctx, spec.Name)
	return err
}

// RemovePool removes a pool that holds no thin volumes at all.
func (m *Manager) RemovePool(ctx context.Context, name string) error {
	m.mu.Lock()
	p, ok := m.pools[name]
	m.mu.Unlock()
	if !ok {
		m.discover(ctx)
		m.mu.Lock()
		p, ok = m.pools[name]
		m.mu.Unlock()
		if !ok {
			return notFound("pool", name)
		}
	}
	own, err := lock.Lock(ctx, filepath.Join(m.opts.StateDir, "locks", "pool-"+name+".lock"), true, nil)
	if err != nil {
		return err
	}
	defer own.Release()
	if err := p.backend.RemovePool(context.WithoutCancel(ctx), name); err != nil {
		return fmt.Errorf("remove pool %s: %w", name, err)
	}
	m.mu.Lock()
	if !m.poolHasConfigs(name) {
		delete(m.pools, name)
	} else {
		p.report = nil
	}
	m.dirty = true
	m.mu.Unlock()
	return nil
}

// Init bootstraps a config once: base volume, mkfs, mount, bootstrap,
// unmount, postinit snapshot. When another process (thinroot or mock) is
// initializing the same config, Init waits on mock's init lock and then
// uses its postinit. A failed or interrupted init publishes nothing: the
// base volume is removed, the failure is recorded in the config's state,
// and the next Init starts over clean. out receives the bootstrap's output.
// It returns whether this call did the bootstrap.
func (m *Manager) Init(ctx context.Context, root string, out io.Writer) (bool, error) {
	return m.InitWatch(ctx, root, out, nil)
}

// Init phases reported to InitWatch's watch function.
const (
	PhaseWaitingInit   = "waiting-init"  // another process holds the init lock
	PhaseBootstrapping = "bootstrapping" // this call runs the bootstrap
)

// InitWatch is Init that also tells watch when it starts waiting for the
// init lock and when it starts bootstrapping.
func (m *Manager) InitWatch(ctx context.Context, root string, out io.Writer, watch func(phase string)) (bool, error) {
	if watch == nil {
		watch = func(string) {}
	}
	c, err := m.opConfig(root)
	if err != nil {
		return false, err
	}
	if len(c.Bootstrap) == 0 {
		return false, fmt.Errorf("init %s: the config has no bootstrap command", root)
	}
	if err := m.EnsurePool(ctx, root); err != nil {
		return false, fmt.Errorf("init %s: %w", root, err)
	}
	if r := m.report(c.Pool); findVolume(r, SnapshotLV(root, PostInit)) != nil {
		return false, nil
	}
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return false, fmt.Errorf("basedir: %w", err)
	}
	initLock, err := lock.Lock(ctx, c.InitLockPath(), true, func(h lock.Holder) {
		m.log.Info("waiting for init lock: another process is bootstrapping the config", "config", root, "holder_pid", h.PID)
		watch(PhaseWaitingInit)
	})
	if err != nil {
		return false, fmt.Errorf("init %s: %w", root, err)
	}
	defer initLock.Release()
	own, err := m.lockConfig(ctx, c)
	if err != nil {
		return false, err
	}
	defer own.Release()
	r, err := m.rescan(ctx, c.Pool)
	if err != nil {
		return false, fmt.Errorf("init %s: %w", root, err)
	}
	if findVolume(r, SnapshotLV(root, PostInit)) != nil {
		m.log.Info("config was initialized by another process", "config", root)
		return false, nil
	}
	watch(PhaseBootstrapping)
	did, err := m.bootstrap(context.WithoutCancel(ctx), ctx, c, r, out)
	m.invalidate(c.Pool)
	return did, err
}

// bootstrap runs under the exclusive init lock. mctx is never cancelled
// (steps that change volumes run to the end); bctx cancels the bootstrap
// command itself, after which everything is rolled back.
func (m *Manager) bootstrap(mctx, bctx context.Context, c *Config, r *PoolReport, out io.Writer) (bool, error) {
	be := m.backendFor(c)
	base := WorkdirLV(c.Root, c.UniqueExt)
	postinit := SnapshotLV(c.Root, PostInit)
	target := c.RootPath(c.UniqueExt)
	if v := findVolume(r, base); v != nil {
		// The init lock is ours and there is no postinit: a previous init
		// failed (mock's own rule). Start over, but never destroy a workdir
		// cloned from a snapshot.
		if v.Origin != "" && findVolume(r, v.Origin) != nil {
			return false, fmt.Errorf("init %s: workdir %s exists (cloned from %s) but there is no postinit; remove it first: %w", c.Root, base, v.Origin, ErrExists)
		}
		m.log.Warn("removing the base volume of a failed init", "config", c.Root, "volume", base)
		if err := unmountRoot(target, true); err != nil {
			return false, err
		}
		if err := be.Remove(mctx, c.Pool, base); err != nil && !errors.Is(err, ErrNotFound) {
			return false, fmt.Errorf("init %s: remove old base: %w", c.Root, err)
		}
	}
	if err := m.ensureSpace(mctx, c, r); err != nil {
		return false, fmt.Errorf("init %s: %w", c.Root, err)
	}
	os.Remove(m.statusPath(c.Root))
	in := &intent{Op: "init", Root: c.Root, Pool: c.Pool, Backend: BackendKey(c),
		Volumes: []string{base, postinit}, Mounts: []string{target}, Frozen: []string{target},
		Records: []recordChange{changeRecord(c, c.UniqueExt, postinit)}}
	if err := m.begin(in); err != nil {
		return false, err
	}
	defer m.done(in)
	m.invalidate(c.Pool)
	start := time.Now()
	m.log.Info("bootstrapping config", "config", c.Root, "pool", c.Pool, "argv", c.Bootstrap)

	fail := func(step string, err error) (bool, error) {
		err = fmt.Errorf("init %s: %s: %w", c.Root, step, err)
		m.log.Error("init failed; rolling back", "config", c.Root, "err", err)
		if uerr := unmountRoot(target, true); uerr != nil {
			m.log.Error("rollback: unmount", "err", uerr)
		}
		for _, v := range []string{postinit, base} {
			if rerr := be.Remove(mctx, c.Pool, v); rerr != nil && !errors.Is(rerr, ErrNotFound) {
				m.log.Error("rollback: remove volume", "volume", v, "err", rerr)
			}
		}
		removeMountDirs(c, c.UniqueExt)
		m.patch(c.Pool, nil, base, postinit)
		reason := strings.ReplaceAll(err.Error(), "\n", " ")
		os.WriteFile(m.statusPath(c.Root), []byte(reason+"\n"), 0o644)
		return false, err
	}

	crashpoint.Hit("init:before-base")
	v, err := be.CreateThin(mctx, c.Pool, base, c.Size)
	if err != nil {
		return fail("create base volume", err)
	}
	crashpoint.Hit("base-create:after")
	mkfs := append([]string{c.MkfsCommand, v.Device}, mkfsArgs(c)...)
	if b, err := exec.CommandContext(mctx, mkfs[0], mkfs[1:]...).CombinedOutput(); err != nil {
		release(be, v)
		return fail("mkfs", fmt.Errorf("%s: %v: %s", strings.Join(mkfs, " "), err, strings.TrimSpace(string(b))))
	}
	crashpoint.Hit("base-create:after-mkfs")
	err = m.mountVolume(c, v, target)
	release(be, v)
	if err != nil {
		return fail("mount base", err)
	}
	crashpoint.Hit("bootstrap:before")
	if err := runBootstrap(bctx, c, target, m.logWriter(out)); err != nil {
		return fail("bootstrap", err)
	}
	crashpoint.Hit("bootstrap:after")
	// postinit is taken while the base is still mounted, frozen for the
	// copy. After an unmount the filesystem is not necessarily shut down
	// and written out: any process that made itself a mount namespace
	// meanwhile (a build's sandbox, unshare, systemd) holds a copy of the
	// mount, the unmount then only detaches ours, and a copy of the image
	// would miss what the bootstrap wrote.
	crashpoint.Hit("postinit:before")
	snap, err := be.Snapshot(mctx, c.Pool, base, postinit, SnapshotOptions{OriginMount: target})
	if err != nil {
		return fail("postinit snapshot", err)
	}
	crashpoint.Hit("postinit:after")
	if err := unmountRoot(target, false); err != nil {
		return fail("unmount base", err)
	}
	crashpoint.Hit("postinit:after-unmount")
	if err := writeSnapinfo(c, c.UniqueExt, postinit); err != nil {
		return fail("record current snapshot", err)
	}
	crashpoint.Hit("postinit:after-record")
	// The base's content now lives on in postinit (thin snapshots do not
	// depend on their origin); a workdir for this ext is made from postinit
	// when someone asks for one, as mock does after a rollback.
	if err := be.Remove(mctx, c.Pool, base); err != nil && !errors.Is(err, ErrNotFound) {
		m.log.Warn("remove base volume after postinit", "volume", base, "err", err)
	}
	crashpoint.Hit("postinit:after-base-remove")
	removeMountDirs(c, c.UniqueExt)
	m.patch(c.Pool, snap, base)
	m.log.Info("config initialized", "config", c.Root, "took", time.Since(start).Round(time.Millisecond))
	return true, nil
}

// mkfsArgs are the config's mkfs_args. When a config leaves them out and
// uses plain ext4, thinroot tells mke2fs that the fresh thin volume reads
// as zeros: it then marks every inode table initialized instead of leaving
// them to the kernel's lazy zeroing, which would run again in every clone
// and write (on dm-thin: allocate) the tables once per workdir.
func mkfsArgs(c *Config) []string {
	if c.MkfsArgs != nil || c.Filesystem != "ext4" || c.MkfsCommand != "mkfs.ext4" || !prezeroedOK() {
		return c.MkfsArgs
	}
	return []string{"-E", "assume_storage_prezeroed=1"}
}

// prezeroedOK tells whether mke2fs knows assume_storage_prezeroed (1.47+).
var prezeroedOK = sync.OnceValue(func() bool {
	out, _ := exec.Command("mke2fs", "-V").CombinedOutput()
	var maj, min int
	if _, err := fmt.Sscanf(strings.TrimPrefix(string(out), "mke2fs "), "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > 1 || (maj == 1 && min >= 47)
})

// runBootstrap runs the config's bootstrap argv with ROOT set. It runs in
// the config's BootstrapDir (the config file's directory) or else the
// caller's working directory, never in a mount of ours: the daemon runs
// from "/".
//
// Its first process is pid 1 of a new pid namespace and gets SIGKILL when
// this process dies: the kernel then kills every process of the
// bootstrap. Otherwise a thinroot killed mid-bootstrap left the
// bootstrap's processes writing into a root that recovery had already
// detached, holding its loop device until they ended. Its own process
// group lets a cancel kill all of it too.
func runBootstrap(ctx context.Context, c *Config, root string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, c.Bootstrap[0], c.Bootstrap[1:]...)
	cmd.Dir = c.BootstrapDir
	cmd.Env = append(append(os.Environ(), "ROOT="+root, "THINROOT_CONFIG="+c.Root), c.BootstrapEnv...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return err
	}
	return nil
}

// needReady returns the cached report of an initialized config's pool.
func (m *Manager) needReady(c *Config) (*PoolReport, error) {
	r := m.report(c.Pool)
	if r == nil {
		return nil, fmt.Errorf("config %s: pool %s does not exist: %w", c.Root, c.Pool, ErrNotReady)
	}
	return r, nil
}

// lockReady takes the config's lock, rescanning its pool, and returns the
// report of the pool of an initialized config.
func (m *Manager) lockReady(ctx context.Context, c *Config) (*lock.Held, *PoolReport, error) {
	own, err := m.lockConfig(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	r, err := m.needReady(c)
	if err != nil {
		own.Release()
		return nil, nil, err
	}
	return own, r, nil
}

// CreateWorkdir clones snapshot snap of config root into a working volume
// for unique-ext ext and mounts it at the config's root path for ext. It
// returns only when the workdir can be entered. Once the clone starts it
// runs to the end even if ctx is cancelled; if the process dies half way
// the next Recover removes what was made.
func (m *Manager) CreateWorkdir(ctx context.Context, root, snap, ext string) (*WorkdirState, error) {
	c, err := m.opConfig(root)
	if err != nil {
		return nil, err
	}
	if snap != "" {
		if err := ValidateSnapshot(root, snap); err != nil {
			return nil, err
		}
	}
	if err := ValidateExt(root, ext); err != nil {
		return nil, err
	}
	unlockShared, err := m.lockShared(ctx, c)
	if err != nil {
		return nil, err
	}
	defer unlockShared()
	own, err := m.lockConfigCached(ctx, c)
	if err != nil {
		return nil, err
	}
	defer own.Release()
	r, err := m.needReady(c)
	if err != nil {
		return nil, err
	}
	if snap == "" {
		// The ext's current snapshot as it is now, under the lock.
		if snap, err = m.Current(root, ext); err != nil {
			return nil, err
		}
	}
	lv := WorkdirLV(root, ext)
	if findVolume(r, lv) != nil {
		return nil, exists("workdir", root+"."+ext)
	}
	snapLV := SnapshotLV(root, snap)
	if findVolume(r, snapLV) == nil {
		return nil, notFound("snapshot", root+"/"+snap)
	}
	if err := m.ensureSpace(ctx, c, r); err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	target := c.RootPath(ext)
	if ok, _ := mount.IsMountpoint(target); ok {
		// Another process made this workdir since our last scan (or
		// something else sits on its mount point): either way it exists.
		return nil, fmt.Errorf("create workdir %s.%s: %s is already mounted: %w", root, ext, target, ErrExists)
	}
	mctx := context.WithoutCancel(ctx)
	be := m.backendFor(c)
	in := &intent{Op: "workdir-create", Root: root, Pool: c.Pool, Backend: BackendKey(c),
		Volumes: []string{lv}, Mounts: []string{target}, Records: []recordChange{changeRecord(c, ext, snapLV)}}
	if err := m.begin(in); err != nil {
		return nil, err
	}
	defer m.done(in)
	crashpoint.Hit("workdir-create:before-clone")
	v, err := be.Snapshot(mctx, c.Pool, snapLV, lv, SnapshotOptions{Activate: true})
	if err != nil {
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	crashpoint.Hit("workdir-create:after-clone")
	err = m.mountVolume(c, v, target)
	release(be, v)
	if err != nil {
		if rerr := be.Remove(mctx, c.Pool, lv); rerr != nil {
			m.log.Error("rollback: remove workdir volume", "volume", lv, "err", rerr)
		}
		removeMountDirs(c, ext)
		return nil, fmt.Errorf("create workdir %s.%s: %w", root, ext, err)
	}
	crashpoint.Hit("workdir-create:after-mount")
	if err := writeSnapinfo(c, ext, snapLV); err != nil {
		m.log.Warn("record current snapshot of new workdir", "err", err)
	}
	crashpoint.Hit("workdir-create:after-record")
	v.Origin = snapLV
	m.patch(c.Pool, v)
	return &WorkdirState{Root: root, Ext: ext, LV: lv, Snapshot: snap, Created: v.Created,
		VirtualSize: v.VirtualSize, Mountpoint: target, Mounted: true, Device: v.Device}, nil
}

// RemoveWorkdir unmounts and removes a working volume. ErrBusy when a
// build holds it or something still uses the mount.
func (m *Manager) RemoveWorkdir(ctx context.Context, root, ext string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if err := ValidateExt(root, ext); err != nil {
		return err
	}
	own, r, err := m.lockReady(ctx, c)
	if err != nil {
		return err
	}
	defer own.Release()
	lv := WorkdirLV(root, ext)
	if findVolume(r, lv) == nil {
		return notFound("workdir", root+"."+ext)
	}
	if who := m.heldBy(root, ext); who != "" {
		return fmt.Errorf("remove workdir %s.%s: used by %s: %w", root, ext, who, ErrBusy)
	}
	target := c.RootPath(ext)
	// Unmount before anything is recorded: a busy mount changes nothing.
	if err := unmountRoot(target, false); err != nil {
		return fmt.Errorf("remove workdir %s.%s: %w", root, ext, err)
	}
	in := &intent{Op: "workdir-remove", Root: root, Pool: c.Pool, Backend: BackendKey(c), Forward: true,
		Volumes: []string{lv}, Mounts: []string{target}}
	if err := m.begin(in); err != nil {
		return err
	}
	defer m.done(in)
	crashpoint.Hit("workdir-remove:after-unmount")
	if err := m.backendFor(c).Remove(context.WithoutCancel(ctx), c.Pool, lv); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove workdir %s.%s: %w", root, ext, err)
	}
	crashpoint.Hit("workdir-remove:after-remove")
	removeMountDirs(c, ext)
	m.patch(c.Pool, nil, lv)
	return nil
}

// Snapshot takes a snapshot named name of the workdir for ext and makes
// it ext's current snapshot, as mock --snapshot does.
func (m *Manager) Snapshot(ctx context.Context, root, ext, name string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if err := ValidateExt(root, ext); err != nil {
		return err
	}
	if err := ValidateSnapshot(root, name); err != nil {
		return err
	}
	own, r, err := m.lockReady(ctx, c)
	if err != nil {
		return err
	}
	defer own.Release()
	lv := WorkdirLV(root, ext)
	if findVolume(r, lv) == nil {
		return notFound("workdir", root+"."+ext)
	}
	snapLV := SnapshotLV(root, name)
	if findVolume(r, snapLV) != nil {
		return exists("snapshot", root+"/"+name)
	}
	if err := m.ensureSpace(ctx, c, r); err != nil {
		return fmt.Errorf("snapshot %s/%s: %w", root, name, err)
	}
	target := c.RootPath(ext)
	opts := SnapshotOptions{}
	in := &intent{Op: "snapshot", Root: root, Pool: c.Pool, Backend: BackendKey(c), Volumes: []string{snapLV},
		Records: []recordChange{changeRecord(c, ext, snapLV)}}
	if ok, _ := mount.IsMountpoint(target); ok {
		opts.OriginMount = target
		in.Frozen = []string{target}
	}
	if err := m.begin(in); err != nil {
		return err
	}
	defer m.done(in)
	crashpoint.Hit("snapshot:before")
	v, err := m.backendFor(c).Snapshot(context.WithoutCancel(ctx), c.Pool, lv, snapLV, opts)
	if err != nil {
		return fmt.Errorf("snapshot %s/%s: %w", root, name, err)
	}
	crashpoint.Hit("snapshot:after")
	if err := writeSnapinfo(c, ext, snapLV); err != nil {
		return err
	}
	crashpoint.Hit("snapshot:after-record")
	m.patch(c.Pool, v)
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
	lv, err := readSnapinfo(c, ext)
	if err != nil {
		return "", err
	}
	if lv != "" && IsOurs(root, lv) && findVolume(r, lv) != nil {
		if vn, ok := ParseLV(lv, []string{root}); ok && !vn.Workdir {
			return vn.Name, nil
		}
	}
	if findVolume(r, SnapshotLV(root, PostInit)) != nil {
		return PostInit, nil
	}
	return "", fmt.Errorf("config %s has no snapshot: %w", root, ErrNotReady)
}

// SetCurrent records snap as the current snapshot of (root, ext).
func (m *Manager) SetCurrent(ctx context.Context, root, ext, snap string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if err := ValidateExt(root, ext); err != nil {
		return err
	}
	if err := ValidateSnapshot(root, snap); err != nil {
		return err
	}
	own, r, err := m.lockReady(ctx, c)
	if err != nil {
		return err
	}
	defer own.Release()
	lv := SnapshotLV(root, snap)
	if findVolume(r, lv) == nil {
		return notFound("snapshot", root+"/"+snap)
	}
	if err := writeSnapinfo(c, ext, lv); err != nil {
		return err
	}
	m.invalidate(c.Pool)
	return nil
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
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	if err := ValidateSnapshot(root, snap); err != nil {
		return err
	}
	if snap == PostInit {
		return fmt.Errorf("will not remove the postinit snapshot of %s; scrub removes all of its volumes: %w", root, ErrNotAllowed)
	}
	own, _, err := m.lockReady(ctx, c)
	if err != nil {
		return err
	}
	defer own.Release()
	lv := SnapshotLV(root, snap)
	_, cs := m.State().Config(root)
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
	in := &intent{Op: "snapshot-remove", Root: root, Pool: c.Pool, Backend: BackendKey(c), Forward: true, Volumes: []string{lv}}
	for _, ext := range snapinfoExts(c) {
		if rec, _ := readSnapinfo(c, ext); rec == lv {
			in.Records = append(in.Records, changeRecord(c, ext, SnapshotLV(root, PostInit)))
		}
	}
	if err := m.begin(in); err != nil {
		return err
	}
	defer m.done(in)
	for _, rc := range in.Records {
		if err := setRecord(rc.Path, rc.New); err != nil {
			return fmt.Errorf("remove snapshot %s/%s: %w", root, snap, err)
		}
	}
	crashpoint.Hit("snapshot-remove:after-records")
	if err := m.backendFor(c).Remove(context.WithoutCancel(ctx), c.Pool, lv); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove snapshot %s/%s: %w", root, snap, err)
	}
	crashpoint.Hit("snapshot-remove:after-remove")
	m.patch(c.Pool, nil, lv)
	return nil
}

// Scrub removes every volume of a config (unmounting workdirs lazily, as
// mock does) and its records; the pool goes too when no thin volume of
// anyone is left in it. ErrBusy while a build holds a workdir or while
// mock (or another thinroot) holds the config's pool lock.
func (m *Manager) Scrub(ctx context.Context, root string) error {
	c, err := m.opConfig(root)
	if err != nil {
		return err
	}
	own, err := m.lockConfig(ctx, c)
	if err != nil {
		return err
	}
	defer own.Release()
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return err
	}
	poolLock, err := lock.TryLock(c.PoolLockPath(), true)
	if err != nil {
		return err
	}
	if poolLock == nil {
		return fmt.Errorf("scrub %s: the config is in use (its pool lock is held): %w", root, ErrBusy)
	}
	defer poolLock.Release()
	m.mu.Lock()
	for k, who := range m.holds {
		if strings.HasPrefix(k, root+"/") {
			m.mu.Unlock()
			return fmt.Errorf("scrub %s: workdir %s used by %s: %w", root, strings.TrimPrefix(k, root+"/"), who, ErrBusy)
		}
	}
	m.mu.Unlock()
	r, err := m.rescan(ctx, c.Pool)
	if errors.Is(err, ErrNotFound) {
		m.clearRecords(c)
		return nil
	}
	if err != nil {
		return err
	}
	var ours []string
	for _, v := range r.Volumes {
		if v.Thin && IsOurs(root, v.Name) {
			ours = append(ours, v.Name)
		}
	}
	be := m.backendFor(c)
	mctx := context.WithoutCancel(ctx)
	var mounts []string
	for _, lv := range ours {
		if vn, ok := ParseLV(lv, []string{root}); ok && vn.Workdir {
			mounts = append(mounts, c.RootPath(vn.Name))
		}
	}
	in := &intent{Op: "scrub", Root: root, Pool: c.Pool, Backend: BackendKey(c), Forward: true, Volumes: ours, Mounts: mounts,
		RemovePool: true}
	for _, ext := range snapinfoExts(c) {
		in.Records = append(in.Records, changeRecord(c, ext, ""))
	}
	if err := m.begin(in); err != nil {
		return err
	}
	defer m.done(in)
	for _, mp := range mounts {
		if err := mount.Unmount(mp, true); err != nil {
			return fmt.Errorf("scrub %s: %w", root, err)
		}
	}
	crashpoint.Hit("scrub:after-unmount")
	for i, lv := range ours {
		m.log.Info("removing volume", "config", root, "volume", lv)
		if err := be.Remove(mctx, c.Pool, lv); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("scrub %s: %w", root, err)
		}
		m.patch(c.Pool, nil, lv)
		if i == 0 {
			crashpoint.Hit("scrub:mid-remove")
		}
	}
	crashpoint.Hit("scrub:after-remove")
	for _, mp := range mounts {
		os.Remove(mp)
		os.Remove(filepath.Dir(mp))
	}
	m.clearRecords(c)
	crashpoint.Hit("scrub:after-records")
	if _, err := m.removeEmptyPool(ctx, be, c.Pool); err != nil {
		return fmt.Errorf("scrub %s: %w", root, err)
	}
	return nil
}

// removeEmptyPool removes pool when no thin volume of anyone is left in
// it (scrub of its last config, or the recovery of one).
func (m *Manager) removeEmptyPool(ctx context.Context, be Backend, pool string) (bool, error) {
	r, err := be.Scan(ctx, pool)
	if errors.Is(err, ErrNotFound) {
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
	plock, err := lock.Lock(ctx, filepath.Join(m.opts.StateDir, "locks", "pool-"+pool+".lock"), true, nil)
	if err != nil {
		return false, err
	}
	defer plock.Release()
	err = be.RemovePool(context.WithoutCancel(ctx), pool)
	if errors.Is(err, ErrNotEmpty) || errors.Is(err, ErrNotFound) {
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

func (m *Manager) clearRecords(c *Config) {
	for _, ext := range snapinfoExts(c) {
		removeSnapinfo(c, ext)
	}
	os.Remove(m.statusPath(c.Root))
	m.invalidate(c.Pool)
}

// Reconcile brings the host in line with the volumes after a restart:
// it finishes interrupted operations and mounts workdirs that exist but
// are not mounted (after a reboot, or when mock left its head unmounted),
// so every workdir listed can be entered.
func (m *Manager) Reconcile(ctx context.Context) error {
	var errs []error
	if err := m.Recover(ctx); err != nil {
		errs = append(errs, err)
	}
	st, err := m.Refresh(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range st.Pools {
		for _, cs := range p.Configs {
			if !cs.Known {
				continue
			}
			for _, w := range cs.Workdirs {
				if w.Mounted {
					continue
				}
				if err := m.activateWorkdir(ctx, cs.Root, w.Ext); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	m.publish()
	return errors.Join(errs...)
}

func (m *Manager) activateWorkdir(ctx context.Context, root, ext string) error {
	c, err := m.Config(root)
	if err != nil {
		return err
	}
	own, err := m.lockConfig(ctx, c)
	if err != nil {
		return err
	}
	defer own.Release()
	target := c.RootPath(ext)
	if ok, _ := mount.IsMountpoint(target); ok {
		return nil
	}
	be := m.backendFor(c)
	v, err := be.Activate(context.WithoutCancel(ctx), c.Pool, WorkdirLV(root, ext))
	if err != nil {
		return fmt.Errorf("mount workdir %s.%s: %w", root, ext, err)
	}
	err = m.mountVolume(c, v, target)
	release(be, v)
	if err != nil {
		return fmt.Errorf("mount workdir %s.%s: %w", root, ext, err)
	}
	m.log.Info("mounted workdir", "config", root, "ext", ext, "at", target)
	return nil
}
