package builddeps

import (
	"context"
	"os"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
)

func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }

// A key changes with every part of its input, and not with the order or
// repetition of the requires.
func TestKey(t *testing.T) {
	in := KeyInput{Config: "c", Base: BaseSnapshot("postinit", time.Unix(10, 5)), Repos: "r", Requires: []string{"b", "a >= 1", "b"}}
	k := Key(in)
	if len(k) != 64 {
		t.Fatalf("key %q", k)
	}
	same := in
	same.Requires = []string{"a  >=  1", "b"}
	if Key(same) != k {
		t.Error("the order, repetition or spacing of requires changed the key")
	}
	for _, c := range []KeyInput{
		{Config: "c2", Base: in.Base, Repos: "r", Requires: in.Requires},
		{Config: "c", Base: BaseSnapshot("postinit", time.Unix(11, 5)), Repos: "r", Requires: in.Requires},
		{Config: "c", Base: in.Base, Repos: "r2", Requires: in.Requires},
		{Config: "c", Base: in.Base, Repos: "r", Requires: []string{"a >= 1"}},
		{Config: "c", Base: in.Base, Repos: "r", Requires: []string{"a >= 2", "b"}},
		{Config: "c", Base: BaseKey(k), Repos: "r", Requires: in.Requires},
	} {
		if Key(c) == k {
			t.Errorf("%+v has the same key", c)
		}
	}
	name := SnapshotName(k)
	if !IsSnapshot(name) || len(name) != 19 || IsSnapshot("bd-xyz") || IsSnapshot("postinit") || IsSnapshot(name+"0") {
		t.Errorf("snapshot name %q", name)
	}
	if ConfigHash("a", map[string]int{"x": 1}) == ConfigHash("b", map[string]int{"x": 1}) {
		t.Error("config hash ignores the root")
	}
}

func rec(snap string, used int, repos, base string) Record {
	return Record{Snapshot: snap, Ready: true, Repos: repos, Base: base, LastUsed: time.Unix(int64(used), 0)}
}

// The policy: stale ones (repositories changed, base gone) always go,
// then the least recently used beyond the count; the rest, least recently
// used first, are the candidates when the pool is over its share.
func TestPlan(t *testing.T) {
	recs := []Record{
		rec("bd-a", 5, "R", "ok"),
		rec("bd-b", 1, "R", "ok"),
		rec("bd-c", 9, "OLD", "ok"),
		rec("bd-d", 3, "R", "gone"),
		rec("bd-e", 7, "R", "ok"),
		rec("bd-f", 2, "R", "ok"),
		{Snapshot: "bd-g", Repos: "R", Base: "ok"}, // not ready: never planned
	}
	baseOK := func(b string) bool { return b == "ok" }
	names := func(rs []Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Snapshot)
		}
		return out
	}
	v := Plan(recs, Policy{Max: 2}, "R", baseOK)
	if got, want := names(v.Drop), []string{"bd-c", "bd-d", "bd-b", "bd-f"}; !reflect.DeepEqual(got, want) {
		t.Errorf("drop %v, want %v", got, want)
	}
	if got, want := names(v.ForSpace), []string{"bd-a", "bd-e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("for space %v, want %v", got, want)
	}
	// Unknown repositories stale nothing; a large count keeps all.
	v = Plan(recs, Policy{Max: 100}, "", nil)
	if len(v.Drop) != 0 || len(v.ForSpace) != 6 || v.ForSpace[0].Snapshot != "bd-b" {
		t.Errorf("keep all: %v / %v", names(v.Drop), names(v.ForSpace))
	}
}

// fakeVols is a config's snapshots in memory, with a pool use that drops
// by 10 points per removed snapshot.
type fakeVols struct {
	mu      sync.Mutex
	snaps   map[string]time.Time
	busy    map[string]bool
	percent float64
}

func (f *fakeVols) State() *lvm.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := lvm.ConfigState{Root: "r"}
	var names []string
	for n := range f.snaps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cs.Snapshots = append(cs.Snapshots, lvm.SnapshotState{Name: n, Created: f.snaps[n]})
	}
	return &lvm.State{Pools: []lvm.PoolState{{Name: "p", Configs: []lvm.ConfigState{cs},
		Stats: lvm.Stats{DataPercent: f.percent}}}}
}

func (f *fakeVols) RemoveSnapshot(ctx context.Context, root, snap string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[snap] {
		return lvm.ErrNotEmpty
	}
	if _, ok := f.snaps[snap]; !ok {
		return lvm.ErrNotFound
	}
	delete(f.snaps, snap)
	f.percent -= 10
	return nil
}

// The whole life of records: begin, commit, lookup, touch; eviction by
// count, by pool space (skipping one in use), of stale ones, of what a
// killed install left, and never of the key just made.
func TestCacheLifecycle(t *testing.T) {
	base := time.Now().Add(-time.Hour).UTC()
	vols := &fakeVols{snaps: map[string]time.Time{"postinit": base}, busy: map[string]bool{}}
	clock := base
	c := &Cache{Dir: t.TempDir(), Root: "r", Policy: Policy{Max: 3, PoolPercent: 50}, Vols: vols,
		Now: func() time.Time { clock = clock.Add(time.Second); return clock }, Log: t.Logf}
	baseID := BaseSnapshot("postinit", base)
	var keys []string
	for i, req := range [][]string{{"a"}, {"b"}, {"c"}, {"d"}} {
		k := Key(KeyInput{Config: "c", Base: baseID, Repos: "R1", Requires: req})
		keys = append(keys, k)
		if _, ok := c.Lookup(k); ok {
			t.Fatalf("lookup of %v before it exists", req)
		}
		r, err := c.Begin(k, baseID, "R1", req, "build"+string(rune('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Lookup(k); ok {
			t.Fatal("a record not yet ready was found")
		}
		vols.snaps[SnapshotName(k)] = clock
		if err := c.Commit(r); err != nil {
			t.Fatal(err)
		}
		if got, ok := c.Lookup(k); !ok || got.Requires[0] != req[0] {
			t.Fatalf("lookup of %v: %v %v", req, got, ok)
		}
	}
	// Using the first makes the second the least recently used.
	r0, _ := c.Lookup(keys[0])
	c.Touch(r0)
	vols.percent = 0
	removed := c.Evict(context.Background(), "R1", keys[3])
	if !reflect.DeepEqual(removed, []string{SnapshotName(keys[1])}) {
		t.Fatalf("count eviction removed %v, want the least recently used %s", removed, SnapshotName(keys[1]))
	}
	// Over the pool share: least recently used first, skipping one that
	// has a workdir, until the pool is under it.
	vols.percent = 65
	vols.busy[SnapshotName(keys[2])] = true
	removed = c.Evict(context.Background(), "R1", "")
	if !reflect.DeepEqual(removed, []string{SnapshotName(keys[3]), SnapshotName(keys[0])}) {
		t.Fatalf("space eviction removed %v", removed)
	}
	// New repository metadata: the rest is stale.
	vols.busy = map[string]bool{}
	vols.percent = 0
	removed = c.Evict(context.Background(), "R2", "")
	if !reflect.DeepEqual(removed, []string{SnapshotName(keys[2])}) || len(c.Records()) != 0 {
		t.Fatalf("stale eviction removed %v, records left %v", removed, c.Records())
	}
	// A killed install: a record never made ready and its snapshot (made
	// before the kill); and a bd- snapshot nobody recorded.
	k := Key(KeyInput{Config: "c", Base: baseID, Repos: "R2", Requires: []string{"z"}})
	if _, err := c.Begin(k, baseID, "R2", []string{"z"}, "killed"); err != nil {
		t.Fatal(err)
	}
	vols.snaps[SnapshotName(k)] = base
	vols.snaps["bd-0123456789abcdef"] = base
	clock = clock.Add(2 * time.Minute)
	removed = c.Evict(context.Background(), "R2", "")
	sort.Strings(removed)
	want := []string{"bd-0123456789abcdef", SnapshotName(k)}
	sort.Strings(want)
	if !reflect.DeepEqual(removed, want) || len(c.Records()) != 0 {
		t.Fatalf("cleanup removed %v, want %v; records %v", removed, want, c.Records())
	}
}

// The key lock: shared holders exclude an installer, an installer
// excludes everyone, and a waiter is told it waits.
func TestLock(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), Root: "r"}
	ctx := testguard.Context(t)
	k := Key(KeyInput{Requires: []string{"x"}})
	s1, err := c.Lock(ctx, k, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.Lock(ctx, k, false, nil)
	if err != nil {
		t.Fatal("two shared holders excluded each other")
	}
	if _, ok := c.tryLock(SnapshotName(k)); ok {
		t.Fatal("eviction's lock taken while a build clones")
	}
	got := make(chan struct{})
	waited := false
	go func() {
		unlock, err := c.Lock(ctx, k, true, func() { waited = true })
		if err == nil {
			unlock()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("the exclusive lock was taken while shared holders held it")
	case <-time.After(200 * time.Millisecond):
	}
	s1()
	s2()
	testguard.WaitFor(t, time.Second, "the installer's lock", func() bool {
		select {
		case <-got:
			return true
		default:
			return false
		}
	})
	if !waited {
		t.Error("the waiter was not told it waits")
	}
	cctx, cancel := context.WithCancel(ctx)
	ex, _ := c.Lock(ctx, k, true, nil)
	cancel()
	if _, err := c.Lock(cctx, k, false, nil); err == nil {
		t.Error("a cancelled wait took the lock")
	}
	ex()
}
