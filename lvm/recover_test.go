package lvm

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// scanManager is a Manager over one empty pool of the scan backend.
func scanManager(t *testing.T, configs ...Config) *Manager {
	t.Helper()
	r := &backend.PoolReport{Name: "mockbuild", Backend: scanKind}
	m, err := NewManager(Options{StateDir: t.TempDir(), Basedir: t.TempDir(),
		Open: func(backend.Spec) (backend.Backend, error) { return &scanBackend{report: r}, nil },
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		if err := m.AddConfig(c); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// The temporary of a current-snapshot record whose writer was killed in
// the middle of writing it is removed by the next operation on its config,
// and only that config's.
func TestConfigLockSweepsRecordTemporaries(t *testing.T) {
	m := scanManager(t)
	c := &Config{Root: "a", Basedir: t.TempDir(), Backend: scanKind}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(c.Basedir, "..snapinfo-mock.a.e1.tmp-123")
	other := filepath.Join(c.Basedir, "..snapinfo-mock.a.b.e1.tmp-456") // config "a.b"
	record := c.SnapinfoPath("e1")
	for _, p := range []string{mine, other, record} {
		os.WriteFile(p, []byte("mock.a.postinit"), 0o644)
	}
	l, err := m.lockConfig(context.Background(), c, false)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(mine); err == nil {
		t.Error("the config's abandoned record temporary is still there")
	}
	for _, p := range []string{other, record} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

// Opening a pool (the first Recover or Refresh) sweeps them too, for
// every registered config of the pool nobody is working on.
func TestOpeningPoolSweepsRecordTemporaries(t *testing.T) {
	c := Config{Root: "a", Basedir: t.TempDir(), Backend: scanKind}
	m := scanManager(t, c)
	tmp := filepath.Join(c.Basedir, "..snapinfo-mock.a.e1.tmp-123")
	os.WriteFile(tmp, nil, 0o644)
	if err := m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("recovery left an abandoned record temporary")
	}
	// Once per pool: a later one is the next operation's to sweep.
	os.WriteFile(tmp, nil, 0o644)
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Error("a refresh swept again: it should only refresh")
	}
}

// A State asked for while another goroutine's publication is under way
// holds what that publication took in: the change is not lost behind the
// older State. Before, State saw the change already taken (no longer
// pending) and returned the older State: a listing right after 16 mkdirs
// through the tree missed one.
func TestStateWaitsForAPublicationUnderWay(t *testing.T) {
	m := scanManager(t, Config{Root: "r", Basedir: t.TempDir(), Backend: scanKind})
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := mock.SnapshotVolume("r", PostInit)
	m.patch("mockbuild", &backend.Volume{Name: snap, Pool: "mockbuild", Thin: true})
	if _, cs := m.state.Load().Config("r"); cs != nil && cs.Snapshot(PostInit) != nil {
		t.Fatal("the patch is published already: the test would prove nothing")
	}
	inView, release := make(chan struct{}), make(chan struct{})
	afterView = func() {
		afterView = nil
		close(inView)
		<-release
	}
	defer func() { afterView = nil }()
	go m.State()
	<-inView
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	if _, cs := m.State().Config("r"); cs == nil || cs.Snapshot(PostInit) == nil {
		t.Fatal("the State misses a change a publication under way had taken in")
	}
}
