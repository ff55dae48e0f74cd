package fsview_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm"
)

// TestFreshness: a workdir made by another process shows in ls within two
// refresh intervals, and its removal likewise, without a remount; entries
// the kernel had cached go too.
func TestFreshness(t *testing.T) {
	const interval = 300 * time.Millisecond
	f := world(t)
	m := mountTree(t, f, nil, interval)
	wdirs := filepath.Join(m.Mnt, "workdirs")
	name := f.Root + ".outside"
	// Look the names up first, so the kernel has something to cache.
	if _, err := os.Lstat(m.link("outside")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("before: %v", err)
	}
	stats := filepath.Join(m.pool(), "stats")
	before := keyValues(t, m.read(stats))["workdirs"]

	cli(t, f, "workdir", "create", f.Root, "outside")
	made := time.Now()
	waitUntil(t, 2*interval, "the workdir to show in workdirs/", made, func() bool {
		return slices.Contains(m.names(wdirs), name)
	})
	waitUntil(t, 2*interval, "the workdir to show under postinit", made, func() bool {
		return slices.Contains(m.names(m.snap("postinit")), "outside")
	})
	if got := keyValues(t, m.read(stats))["workdirs"]; got == before {
		t.Fatalf("stats still say %s workdirs", got)
	}
	// Cache the positive entries, then remove from outside.
	if _, err := os.Lstat(m.link("outside")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.snap("postinit"), "outside", ".info")); err != nil {
		t.Fatal(err)
	}
	cli(t, f, "workdir", "remove", f.Root, "outside")
	gone := time.Now()
	waitUntil(t, 2*interval, "the workdir to leave workdirs/", gone, func() bool {
		_, err := os.Lstat(m.link("outside"))
		return errors.Is(err, fs.ErrNotExist) && !slices.Contains(m.names(wdirs), name)
	})
	waitUntil(t, 2*interval, "the workdir to leave postinit/", gone, func() bool {
		_, err := os.Stat(filepath.Join(m.snap("postinit"), "outside"))
		return errors.Is(err, fs.ErrNotExist)
	})
}

// waitUntil polls cond and fails when it did not hold within limit of since.
func waitUntil(t *testing.T, limit time.Duration, what string, since time.Time, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Since(since) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s: %v", what, time.Since(since).Round(time.Millisecond))
}

// TestInodesStable: a node keeps its inode number across lookups, listings
// and refreshes, and two nodes never share one.
func TestInodesStable(t *testing.T) {
	f := world(t)
	m := mountTree(t, f, nil, 100*time.Millisecond)
	w := filepath.Join(m.snap("postinit"), "w")
	if err := os.Mkdir(w, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := []string{m.Mnt, m.pool(), filepath.Join(m.pool(), "stats"), m.config(), m.snap("postinit"), w,
		filepath.Join(w, ".info"), filepath.Join(w, "root"), m.link("w")}
	inos := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, p := range paths {
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			out[p] = st.Ino
		}
		return out
	}
	first := inos()
	seen := map[uint64]string{}
	for p, ino := range first {
		if q, dup := seen[ino]; dup {
			t.Fatalf("%s and %s share inode %d", p, q, ino)
		}
		seen[ino] = p
	}
	// The listing's d_ino agrees with stat.
	ents, err := os.ReadDir(m.snap("postinit"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "w" {
			info, _ := e.Info()
			if ino := info.Sys().(*syscall.Stat_t).Ino; ino != first[w] {
				t.Fatalf("readdir says inode %d, stat %d", ino, first[w])
			}
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := f.M.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	for p, ino := range inos() {
		if ino != first[p] {
			t.Fatalf("%s: inode %d, was %d", p, ino, first[p])
		}
	}
}

// panicModel panics in State when told to.
type panicModel struct {
	*lvm.Manager
	on *atomic.Bool
}

func (p panicModel) State() *lvm.State {
	if p.on.Load() {
		panic("state exploded")
	}
	return p.Manager.State()
}

// TestPanicKeepsMount: a panicking handler answers EIO and the tree keeps
// serving.
func TestPanicKeepsMount(t *testing.T) {
	f := world(t)
	var on atomic.Bool
	m := mountTree(t, f, panicModel{f.M, &on}, 100*time.Millisecond)
	stats := filepath.Join(m.pool(), "stats")
	m.read(stats)
	on.Store(true)
	_, err := os.ReadFile(stats)
	wantErrno(t, "read while handlers panic", err, syscall.EIO)
	time.Sleep(250 * time.Millisecond) // the invalidator panics too, and must survive
	on.Store(false)
	if got := keyValues(t, m.read(stats))["pool"]; got != f.Pool {
		t.Fatalf("after the panics stats say pool %q", got)
	}
	if err := os.Mkdir(filepath.Join(m.snap("postinit"), "after"), 0o755); err != nil {
		t.Fatal(err)
	}
}
