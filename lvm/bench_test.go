package lvm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Benchmarks of the Manager's hot paths: a refresh (one scan per pool,
// then a new State) with many volumes, the State every tree request
// reads, the stats files' rendering and name checks. make bench runs them
// (bench/gobench.go); go test -run '^$' -bench . ./lvm/ runs them alone.

// scanBackend is a backend whose Scan hands back a prepared report at
// once, so a benchmark measures the Manager and not a disk. Its kind is
// registered so that configs can name it; the Manager gets the instance
// through Options.Open.
type scanBackend struct {
	report *backend.PoolReport
}

const scanKind = "scan"

func init() {
	backend.Register(backend.Kind{Name: scanKind, Open: func(backend.Env, map[string]string) (backend.Backend, error) {
		return nil, ErrUnsupported
	}})
}

func (s *scanBackend) Kind() string                       { return scanKind }
func (s *scanBackend) Capabilities() backend.Capabilities { return backend.Capabilities{} }
func (s *scanBackend) CreatePool(ctx context.Context, spec backend.PoolSpec) error {
	return ErrUnsupported
}
func (s *scanBackend) RemovePool(ctx context.Context, pool string) error { return ErrUnsupported }
func (s *scanBackend) Pools(ctx context.Context) ([]string, error) {
	return []string{s.report.Name}, nil
}
func (s *scanBackend) Scan(ctx context.Context, pool string) (*backend.PoolReport, error) {
	r := *s.report
	r.Volumes = append([]backend.Volume(nil), s.report.Volumes...)
	r.Scanned = time.Now()
	return &r, nil
}
func (s *scanBackend) Create(ctx context.Context, pool, name string, size int64) (*backend.Volume, error) {
	return nil, ErrUnsupported
}
func (s *scanBackend) Snapshot(ctx context.Context, pool, origin, name string, opts backend.SnapshotOptions) (*backend.Volume, error) {
	return nil, ErrUnsupported
}
func (s *scanBackend) Activate(ctx context.Context, pool, name string) (*backend.Volume, error) {
	return nil, ErrUnsupported
}
func (s *scanBackend) Remove(ctx context.Context, pool, name string) error { return ErrUnsupported }

// Fixtures are made once per size and process: making 2000 snapinfo
// records takes seconds on a busy disk, and the benchmark function runs
// several times while go test calibrates b.N.
var (
	fixtureMu   sync.Mutex
	fixtures    = map[[2]int]*Manager{}
	fixtureDirs []string
)

// TestMain removes the benchmarks' fixtures when the tests are done.
func TestMain(m *testing.M) {
	code := testguard.Main(m)
	for _, d := range fixtureDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// benchManager is a Manager over one pool holding configs configs, each
// with a postinit snapshot and perConfig workdirs cloned from it, and
// the snapinfo record of each workdir's ext.
func benchManager(b *testing.B, configs, perConfig int) *Manager {
	b.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if m, ok := fixtures[[2]int{configs, perConfig}]; ok {
		return m
	}
	dir, err := os.MkdirTemp("", "thinroot-lvm-bench-")
	if err != nil {
		b.Fatal(err)
	}
	fixtureDirs = append(fixtureDirs, dir)
	basedir, stateDir := filepath.Join(dir, "mock"), filepath.Join(dir, "state")
	if err := os.MkdirAll(basedir, 0o755); err != nil {
		b.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &backend.PoolReport{Name: "mockbuild", Backend: scanKind, SizeBytes: 20 << 30, UsedBytes: 5 << 30,
		DataPercent: 25, MetadataPercent: 3, MetadataLabel: "inodes", WarnPercent: 75, RefusePercent: 90}
	var cfgs []Config
	for i := 0; i < configs; i++ {
		root := fmt.Sprintf("fedora-%02d-x86_64", i)
		c := Config{Root: root, Backend: scanKind, Pool: "mockbuild", Basedir: basedir, Size: 8 << 30}
		if err := c.Normalize(); err != nil {
			b.Fatal(err)
		}
		cfgs = append(cfgs, c)
		post := mock.SnapshotVolume(root, PostInit)
		r.Volumes = append(r.Volumes, backend.Volume{Name: post, Pool: "mockbuild", Thin: true, VirtualSize: 8 << 30,
			UsedBytes: 400 << 20, Created: created})
		for j := 0; j < perConfig; j++ {
			ext := fmt.Sprintf("w%03d", j)
			r.Volumes = append(r.Volumes, backend.Volume{Name: mock.WorkdirVolume(root, ext), Pool: "mockbuild", Origin: post, Thin: true,
				VirtualSize: 8 << 30, UsedBytes: 4 << 20, Created: created, Active: true, Mount: backend.Mount{Source: fmt.Sprintf("/dev/loop%d", j)}})
			// The record CreateWorkdir leaves, written without its fsync:
			// this is a fixture, not the operation.
			if err := os.WriteFile(c.SnapinfoPath(ext), []byte(post), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	m, err := NewManager(Options{StateDir: stateDir, Basedir: basedir,
		Open: func(backend.Spec) (backend.Backend, error) { return &scanBackend{report: r}, nil },
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cfgs {
		if err := m.AddConfig(c); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := m.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	fixtures[[2]int{configs, perConfig}] = m
	return m
}

var sizes = []struct{ configs, perConfig int }{{10, 20}, {20, 100}}

// BenchmarkRefresh is one refresh: scan (free here), then publish a new
// State built from the report, the mount table, snapinfo records and
// locks. The tree runs one per second and after every operation.
func BenchmarkRefresh(b *testing.B) {
	for _, s := range sizes {
		b.Run(fmt.Sprintf("workdirs=%d", s.configs*s.perConfig), func(b *testing.B) {
			m := benchManager(b, s.configs, s.perConfig)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Refresh(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublish is the State building alone, as after an operation
// patched the cached report.
func BenchmarkPublish(b *testing.B) {
	for _, s := range sizes {
		b.Run(fmt.Sprintf("workdirs=%d", s.configs*s.perConfig), func(b *testing.B) {
			m := benchManager(b, s.configs, s.perConfig)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if st := m.publish(); len(st.Pools) != 1 {
					b.Fatal("no pool")
				}
			}
		})
	}
}

// BenchmarkState is what every FUSE request starts with.
func BenchmarkState(b *testing.B) {
	m := benchManager(b, 10, 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m.State() == nil {
			b.Fatal("no state")
		}
	}
}
