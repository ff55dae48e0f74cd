// Package lvmtest is test support: the contract suite every backend
// passes, written once and run per backend (the memory backend as an
// ordinary user; file and btrfs as root on this host; lvm2 in the VM),
// the fixtures the tree's, the builder's and the fault suite's tests
// build on, and the one helper-process protocol they all use to run an
// operation in another OS process (and kill it there). On real backends
// each test works on real parts: a real pool, real volumes, a busybox
// root made by the real bootstrap script, real mounts and chroots, and
// real processes killed with SIGKILL.
//
// It imports the Manager, the backends and their test helpers; nothing
// but tests imports it.
package lvmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
)

// Env describes the backend under test.
type Env struct {
	// Name is the backend's kind ("memory", "file", "btrfs", "lvm2"); the
	// helper protocol finds the env by it.
	Name string
	// Options are the backend's settings configs carry (lvm2:
	// volume_group).
	Options map[string]string
	// Open, when set, opens backends for a state directory instead of the
	// registry (a test's own instance, e.g. one counting commands).
	Open func(stateDir string) func(backend.Spec) (backend.Backend, error)
	// Mounter, when set, is the Manager's mounter for a state directory
	// (the memory backend's table; nil: real mounts).
	Mounter func(stateDir string) lvm.Mounter
	// Unprivileged backends run without root: their volumes hold no
	// files a test could chroot into, and nothing is really mounted.
	Unprivileged bool
	// Bootstrap replaces the busybox bootstrap (which needs root).
	Bootstrap []string
	// Fill makes a pool look as full as the given share of its size (a
	// backend without real space to fill; nil: write data).
	Fill func(t testing.TB, stateDir, pool string, share float64)
	// PoolSize is the size of the pools the suite creates (default 2 GiB).
	PoolSize int64
	// VolumeSize is the virtual size of volumes (default 1 GiB).
	VolumeSize int64
	// SpacePadMB is the size of the root in the space test (default 200);
	// a backend whose writes are slow (lvm2 under an emulated CPU) may
	// use less.
	SpacePadMB int
	// RemovePool cleans up a pool the suite made (optional).
	RemovePool func(t testing.TB, stateDir, pool string)
}

// Real tells whether the env's volumes hold real files in real mounts.
func (e Env) Real() bool { return !e.Unprivileged }

// ConfigFor returns a config of the env's backend for root in pool; the
// caller fills in the rest.
func (e Env) ConfigFor(root, pool string) lvm.Config {
	return lvm.Config{Root: root, Pool: pool, Backend: e.Name, BackendOptions: e.Options}
}

// ManagerOptions are the Manager's options for a state directory and
// basedir.
func (e Env) ManagerOptions(stateDir, basedir string, log *slog.Logger) lvm.Options {
	o := lvm.Options{StateDir: stateDir, Basedir: basedir, Log: log, Discover: []backend.Spec{e.Spec()}}
	if e.Open != nil {
		o.Open = e.Open(stateDir)
	}
	if e.Mounter != nil {
		o.Mounter = e.Mounter(stateDir)
	}
	return o
}

// Flags are the thinroot command-line flags that name the env's backend
// for an ad hoc config.
func (e Env) Flags() []string {
	out := []string{"--backend", e.Name}
	if vg := e.Options["volume_group"]; vg != "" {
		out = append(out, "--volume-group", vg)
	}
	return out
}

// Spec names the env's backend (for CreatePool).
func (e Env) Spec() backend.Spec {
	return backend.Spec{Kind: e.Name, Options: e.Options}
}

// Backend opens the env's backend for a state directory, for tests that
// look at it directly.
func (e Env) Backend(t testing.TB, stateDir string) backend.Backend {
	t.Helper()
	s, err := backend.SpecFor(e.Name, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	var be backend.Backend
	if e.Open != nil {
		be, err = e.Open(stateDir)(s)
	} else {
		be, err = backend.Open(backend.Env{StateDir: stateDir, Log: TestLogger(t)}, s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// Fixture is one test's world: its own state dir, basedir and pool.
type Fixture struct {
	T        testing.TB
	Env      Env
	StateDir string
	Basedir  string
	Pool     string
	Root     string
	Config   lvm.Config
	M        *lvm.Manager
	Log      *slog.Logger
}

var poolSeq atomic.Int64

// NewFixture makes a fixture with a fresh Manager; the pool is created on
// first use (Init) unless the test makes it.
func NewFixture(t testing.TB, env Env) *Fixture {
	t.Helper()
	return NewFixtureRoot(t, env, "busybox-test")
}

// NewFixtureRoot is NewFixture for a config named root. Tests that run side
// by side need their own roots: lvm2 names volumes per volume group, not
// per pool, so two pools cannot both hold +mock.busybox-test.head.
func NewFixtureRoot(t testing.TB, env Env, root string) *Fixture {
	t.Helper()
	if env.Real() {
		RequireRoot(t)
	}
	if env.PoolSize == 0 {
		env.PoolSize = 2 << 30
	}
	if env.VolumeSize == 0 {
		env.VolumeSize = 1 << 30
	}
	dir := t.TempDir()
	f := &Fixture{
		T: t, Env: env,
		StateDir: filepath.Join(dir, "state"),
		Basedir:  filepath.Join(dir, "mock"),
		Pool:     fmt.Sprintf("tp%d-%d", os.Getpid()%10000, poolSeq.Add(1)),
		Root:     root,
		Log:      TestLogger(t),
	}
	f.Config = f.ConfigFor(f.Root)
	f.M = f.NewManager()
	t.Cleanup(f.cleanup)
	return f
}

// ConfigFor returns a config of root in the fixture's pool.
func (f *Fixture) ConfigFor(root string) lvm.Config {
	c := f.Env.ConfigFor(root, f.Pool)
	c.Basedir = f.Basedir
	c.Size = f.Env.VolumeSize
	c.PoolSize = f.Env.PoolSize
	c.CheckSize = true
	c.Bootstrap = f.Env.Bootstrap
	if c.Bootstrap == nil {
		c.Bootstrap = []string{"/bin/sh", BootstrapScript(f.T)}
	}
	return c
}

// NewManager makes a Manager on the fixture's directories with the
// fixture's config registered, as a restarted process would.
func (f *Fixture) NewManager(extra ...lvm.Config) *lvm.Manager {
	f.T.Helper()
	m, err := lvm.NewManager(f.Env.ManagerOptions(f.StateDir, f.Basedir, f.Log))
	if err != nil {
		f.T.Fatal(err)
	}
	for _, c := range append([]lvm.Config{f.Config}, extra...) {
		if err := m.AddConfig(c); err != nil {
			f.T.Fatal(err)
		}
	}
	if err := m.Recover(context.Background()); err != nil {
		f.T.Fatalf("recover: %v", err)
	}
	if _, err := m.Refresh(context.Background()); err != nil {
		f.T.Fatalf("refresh: %v", err)
	}
	return m
}

// Init bootstraps the fixture's config; padMB adds incompressible data to
// the root so space figures mean something.
func (f *Fixture) Init(padMB int) {
	f.T.Helper()
	f.Config.BootstrapEnv = []string{"BOOTSTRAP_PAD_MB=" + strconv.Itoa(padMB)}
	if err := f.M.AddConfig(f.Config); err != nil {
		f.T.Fatal(err)
	}
	did, err := f.M.Init(context.Background(), f.Root, TestWriter(f.T))
	if err != nil {
		f.T.Fatalf("init: %v", err)
	}
	if !did {
		f.T.Fatal("init: did not bootstrap a fresh config")
	}
}

// Workdir creates a workdir and returns its mounted root.
func (f *Fixture) Workdir(snap, ext string) string {
	f.T.Helper()
	w, err := f.M.CreateWorkdir(context.Background(), f.Root, snap, ext)
	if err != nil {
		f.T.Fatalf("create workdir %s from %s: %v", ext, snap, err)
	}
	return w.Mountpoint
}

func (f *Fixture) cleanup() {
	ctx := context.Background()
	m := f.NewManager()
	st := m.State()
	if p := st.Pool(f.Pool); p != nil {
		for _, c := range p.Configs {
			if err := m.AddConfig(f.ConfigFor(c.Root)); err == nil {
				if err := m.Scrub(ctx, c.Root); err != nil {
					f.T.Logf("cleanup: scrub %s: %v", c.Root, err)
				}
			}
		}
		if err := m.RemovePool(ctx, f.Pool); err != nil && !errors.Is(err, lvm.ErrNotFound) {
			f.T.Logf("cleanup: remove pool: %v", err)
		}
	}
	if f.Env.RemovePool != nil {
		f.Env.RemovePool(f.T, f.StateDir, f.Pool)
	}
}

// Mounted tells whether something is mounted at path, through the env's
// mounter.
func (f *Fixture) Mounted(path string) bool {
	mounted, _ := f.mounter().Mounted()
	return mounted(path)
}

// MountsUnder lists the mount points under dir, through the env's mounter.
func (f *Fixture) MountsUnder(dir string) []string {
	var all []string
	if lister, ok := f.mounter().(interface{ Targets() []string }); ok {
		all = lister.Targets()
	} else {
		table, _ := mount.Table()
		for _, e := range table {
			all = append(all, e.Mountpoint)
		}
	}
	var out []string
	for _, mp := range all {
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func (f *Fixture) mounter() lvm.Mounter {
	if f.Env.Mounter != nil {
		return f.Env.Mounter(f.StateDir)
	}
	return lvm.HostMounter()
}

// ConfigState returns the config's state from a fresh publication.
func (f *Fixture) ConfigState(m *lvm.Manager, root string) *lvm.ConfigState {
	_, cs := m.State().Config(root)
	return cs
}

// RequireRoot skips, saying why, when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates pools, loop devices and mounts (CI runs as root)")
	}
}

// RepoRoot finds the module root from the working directory (go test runs
// in the package directory; the VM harness runs there too).
func RepoRoot(t testing.TB) string {
	t.Helper()
	if r := os.Getenv("THINROOT_REPO"); r != "" {
		return r
	}
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatalf("cannot find the module root above %s (set THINROOT_REPO)", dir)
	return ""
}

// BootstrapScript is the busybox bootstrap.
func BootstrapScript(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "testdata", "bootstrap", "busybox.sh")
}

// TestLogger logs into the test's output.
func TestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(TestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestWriter writes into the test's log.
func TestWriter(t testing.TB) io.Writer { return testWriter{t} }

// Chroot runs a shell command inside a root with the root's busybox.
func Chroot(t testing.TB, root, script string) string {
	t.Helper()
	out, err := exec.Command("chroot", root, "/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %q: %v\n%s", root, script, err, out)
	}
	return string(out)
}

// WaitFor polls cond until it holds. expect is how long that takes on
// an idle machine: a wait past it is logged, not failed, since a loaded
// machine is slower; the wait fails only at the test's deadline
// (testguard.Deadline), so a slow machine never fails a test that a
// fast one passes, and a wait that never ends still ends the test.
func WaitFor(t testing.TB, expect time.Duration, what string, cond func() bool) {
	t.Helper()
	testguard.WaitFor(t, expect, what, cond)
}

// RequireCrashPoints skips, saying why, when this test binary was built
// without crash points (the build tag crashpoints; make test sets it).
func RequireCrashPoints(t testing.TB) {
	t.Helper()
	if !crashpoint.Enabled {
		t.Skip("needs crash points: build with -tags " + crashpoint.Tag + " (make test does)")
	}
}
