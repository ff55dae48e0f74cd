package fsview

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/mock"
)

// These tests need no root and no mount: they look at the nodes' listings
// and renderings over a State made by hand.

type fakeModel struct {
	st      *lvm.State
	configs []lvm.Config
	builds  map[string]string
}

func (f *fakeModel) State() *lvm.State                               { return f.st }
func (f *fakeModel) Changed() <-chan struct{}                        { return make(chan struct{}) }
func (f *fakeModel) Refresh(ctx context.Context) (*lvm.State, error) { return f.st, nil }
func (f *fakeModel) Configs() []lvm.Config                           { return f.configs }
func (f *fakeModel) CreateWorkdir(ctx context.Context, root, snap, ext string) (*lvm.WorkdirState, error) {
	return nil, lvm.ErrUnsupported
}
func (f *fakeModel) RemoveWorkdir(ctx context.Context, root, ext string) error {
	return lvm.ErrUnsupported
}
func (f *fakeModel) Snapshot(ctx context.Context, root, ext, name string) error {
	return lvm.ErrUnsupported
}
func (f *fakeModel) SetCurrent(ctx context.Context, root, ext, snap string) error {
	return lvm.ErrUnsupported
}
func (f *fakeModel) RemoveSnapshot(ctx context.Context, root, snap string) error {
	return lvm.ErrUnsupported
}

// BuildIDs and friends make the fake a Builds too.
func (f *fakeModel) BuildIDs() []string {
	var ids []string
	for id := range f.builds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
func (f *fakeModel) BuildFile(id, name string) ([]byte, error) {
	if s, ok := f.builds[id]; ok {
		return []byte(name + " of " + s + "\n"), nil
	}
	return nil, fmt.Errorf("build %s: %w", id, lvm.ErrNotFound)
}
func (f *fakeModel) BuildResult(id string) string {
	if id == "b1" {
		return "/var/lib/mock/result-b1"
	}
	return ""
}

func sampleState() *lvm.State {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := func(root, ext, snap string) lvm.WorkdirState {
		return lvm.WorkdirState{Root: root, Ext: ext, LV: mock.WorkdirVolume(root, ext), Snapshot: snap, Created: created,
			Mountpoint: "/var/lib/mock/" + root + "-" + ext + "/root", Mounted: true, Device: "/dev/loop1"}
	}
	return &lvm.State{Generation: 1, Taken: created, Pools: []lvm.PoolState{{
		Name: "mockbuild", Backend: "file",
		Stats: lvm.Stats{Backend: "file", Pool: "mockbuild", SizeBytes: 100, Status: "ok", Updated: created},
		Configs: []lvm.ConfigState{
			{Root: "f41", Pool: "mockbuild", Known: true, State: lvm.StateReady, Current: "postinit",
				Snapshots: []lvm.SnapshotState{
					{Name: "postinit", LV: "mock.f41.postinit", Created: created, Workdirs: []lvm.WorkdirState{w("f41", "a", "postinit"), w("f41", "b", "postinit")}},
					{Name: "s1", LV: "mock.f41.s1", Origin: "+mock.f41.a", Created: created, Workdirs: []lvm.WorkdirState{w("f41", "c", "s1")}},
				},
				Workdirs: []lvm.WorkdirState{w("f41", "a", "postinit"), w("f41", "b", "postinit"), w("f41", "c", "s1")}},
			{Root: "rhel+epel-9.5", Pool: "mockbuild", State: lvm.StateInitializing, StateDetail: "since 2026-01-02T03:04:05Z, pid 7"},
		},
	}}}
}

func newTestTree(fm *fakeModel, builds bool) *Tree {
	opts := Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if builds {
		opts.Builds = fm
	}
	return New(fm, opts)
}

func TestTreeShape(t *testing.T) {
	fm := &fakeModel{st: sampleState(), configs: []lvm.Config{{Root: "f41", Pool: "mockbuild"}}}
	v := newTestTree(fm, false).flatten(fm.st)
	var paths []string
	for p := range v {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	want := []string{"", "README", "builds", "configs", "configs/f41", "pools", "pools/mockbuild",
		"pools/mockbuild/configs",
		"pools/mockbuild/configs/f41", "pools/mockbuild/configs/f41/current", "pools/mockbuild/configs/f41/snapshots",
		"pools/mockbuild/configs/f41/snapshots/postinit", "pools/mockbuild/configs/f41/snapshots/postinit/.info", "pools/mockbuild/configs/f41/snapshots/postinit/.info.json",
		"pools/mockbuild/configs/f41/snapshots/postinit/a", "pools/mockbuild/configs/f41/snapshots/postinit/a/.info",
		"pools/mockbuild/configs/f41/snapshots/postinit/a/.info.json",
		"pools/mockbuild/configs/f41/snapshots/postinit/a/root", "pools/mockbuild/configs/f41/snapshots/postinit/a/snapshot",
		"pools/mockbuild/configs/f41/snapshots/postinit/b", "pools/mockbuild/configs/f41/snapshots/postinit/b/.info",
		"pools/mockbuild/configs/f41/snapshots/postinit/b/.info.json",
		"pools/mockbuild/configs/f41/snapshots/postinit/b/root", "pools/mockbuild/configs/f41/snapshots/postinit/b/snapshot",
		"pools/mockbuild/configs/f41/snapshots/s1", "pools/mockbuild/configs/f41/snapshots/s1/.info", "pools/mockbuild/configs/f41/snapshots/s1/.info.json",
		"pools/mockbuild/configs/f41/snapshots/s1/c", "pools/mockbuild/configs/f41/snapshots/s1/c/.info",
		"pools/mockbuild/configs/f41/snapshots/s1/c/.info.json",
		"pools/mockbuild/configs/f41/snapshots/s1/c/root", "pools/mockbuild/configs/f41/snapshots/s1/c/snapshot",
		"pools/mockbuild/configs/f41/state",
		"pools/mockbuild/configs/rhel+epel-9.5", "pools/mockbuild/configs/rhel+epel-9.5/current",
		"pools/mockbuild/configs/rhel+epel-9.5/snapshots", "pools/mockbuild/configs/rhel+epel-9.5/state",
		"pools/mockbuild/stats", "pools/mockbuild/stats.json",
		"workdirs", "workdirs/f41.a", "workdirs/f41.b", "workdirs/f41.c"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("tree:\n%s\nwant:\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	if got := v["workdirs/f41.c"].content; got != "/var/lib/mock/f41-c/root" {
		t.Fatalf("workdirs/f41.c -> %q", got)
	}
	if got := v["configs/f41"].content; got != "../pools/mockbuild/configs/f41" {
		t.Fatalf("configs/f41 -> %q", got)
	}
	if got := v["pools/mockbuild/configs/rhel+epel-9.5/state"].content; got != "initializing (since 2026-01-02T03:04:05Z, pid 7)\n" {
		t.Fatalf("state %q", got)
	}
	if got := v["pools/mockbuild/configs/f41/snapshots/s1/.info"].content; !strings.Contains(got, "origin: workdir a\n") ||
		!strings.Contains(got, "origin_volume: +mock.f41.a\n") || !strings.Contains(got, "workdirs: c\n") {
		t.Fatalf(".info:\n%s", got)
	}
	var js SnapshotInfo
	if err := json.Unmarshal([]byte(v["pools/mockbuild/configs/f41/snapshots/s1/.info.json"].content), &js); err != nil ||
		js.Origin != "workdir a" || !reflect.DeepEqual(js.Workdirs, []string{"c"}) {
		t.Fatalf(".info.json: %+v %v", js, err)
	}
}

// Listings are sorted whatever order the State comes in.
func TestListingsSorted(t *testing.T) {
	st := sampleState()
	cs := &st.Pools[0].Configs[0]
	slices.Reverse(cs.Workdirs)
	fm := &fakeModel{st: st}
	tr := newTestTree(fm, false)
	d := mk(tr, &workdirsDir{}, "", "workdirs")
	kids, _ := d.list(st)
	var names []string
	for _, k := range kids {
		names = append(names, k.b().name)
	}
	if !slices.IsSorted(names) || len(names) != 3 {
		t.Fatalf("workdirs/ lists %v", names)
	}
}

func TestBuilds(t *testing.T) {
	fm := &fakeModel{st: sampleState(), builds: map[string]string{"b1": "one", "b2": "two"}}
	v := newTestTree(fm, true).flatten(fm.st)
	for _, p := range []string{"builds/b1", "builds/b1/log", "builds/b1/result", "builds/b1/spec", "builds/b1/status", "builds/b2/status"} {
		if _, ok := v[p]; !ok {
			t.Errorf("%s missing", p)
		}
	}
	if _, ok := v["builds/b2/result"]; ok {
		t.Error("builds/b2/result shown without a result")
	}
	f := mk(newTestTree(fm, true), &buildFile{id: "b2", which: "status"}, "builds/b2", "status")
	if data, _, ok := f.content(fm.st); !ok || string(data) != "status of two\n" {
		t.Fatalf("status: %q %v", data, ok)
	}
}

func TestInoStable(t *testing.T) {
	a, b := ino("workdir", "pools/p/x"), ino("workdir", "pools/p/x")
	if a != b || a < 2 || a >= 1<<63 {
		t.Fatalf("ino %d, %d", a, b)
	}
	if ino("workdir", "pools/p/x") == ino("workdir-info", "pools/p/x") || ino("workdir", "a/b") == ino("workdir", "a/c") {
		t.Fatal("different nodes share an inode number")
	}
}

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		in    string
		off   int64
		name  string
		errno syscall.Errno
	}{
		{"s1\n", 0, "s1", 0},
		{"s1", 0, "s1", 0},
		{"s1\n", 3, "", syscall.EINVAL},
		{"", 0, "", syscall.EINVAL},
		{"\n", 0, "", syscall.EINVAL},
		{"s1\n\n", 0, "", syscall.EINVAL},
		{"a b\n", 0, "", syscall.EINVAL},
		{"a\tb", 0, "", syscall.EINVAL},
		{"a/b", 0, "", syscall.EINVAL},
		{" s1\n", 0, "", syscall.EINVAL},
		{"s1\r\n", 0, "", syscall.EINVAL},
		{strings.Repeat("x", maxAction+1), 0, "", syscall.EINVAL},
	} {
		name, errno := parseName([]byte(c.in), c.off)
		if name != c.name || errno != c.errno {
			t.Errorf("parseName(%q, %d) = %q, %v; want %q, %v", c.in, c.off, name, errno, c.name, c.errno)
		}
	}
}

func TestErrno(t *testing.T) {
	for _, c := range []struct {
		err   error
		errno syscall.Errno
	}{
		{nil, 0},
		{&lvm.NameError{Kind: "unique-ext", Name: "a.b", Reason: "dot"}, syscall.EINVAL},
		{fmt.Errorf("workdir x: %w", lvm.ErrExists), syscall.EEXIST},
		{fmt.Errorf("create: %w", &lvm.PoolFullError{Pool: "p"}), syscall.ENOSPC},
		{fmt.Errorf("x: %w", lvm.ErrBusy), syscall.EBUSY},
		{fmt.Errorf("x: %w", lvm.ErrNotEmpty), syscall.ENOTEMPTY},
		{fmt.Errorf("x: %w", lvm.ErrNotAllowed), syscall.EPERM},
		{fmt.Errorf("x: %w", lvm.ErrNotFound), syscall.ENOENT},
		{fmt.Errorf("x: %w", lvm.ErrNotReady), syscall.ENOENT},
		{fmt.Errorf("write: %w", syscall.ENOSPC), syscall.ENOSPC},
		{fmt.Errorf("mkfs: %w", syscall.EINVAL), syscall.EIO},
		{fmt.Errorf("something broke"), syscall.EIO},
	} {
		if got := Errno(c.err); got != c.errno {
			t.Errorf("Errno(%v) = %v, want %v", c.err, got, c.errno)
		}
	}
}

func TestRenderWorkdirInfo(t *testing.T) {
	w := sampleState().Pools[0].Configs[0].Workdirs[0]
	w.Busy = "build 12"
	w.Created = w.Created.Add(123456789) // nanoseconds never show
	info := NewWorkdirInfo(&w)
	got := string(info.Text())
	want := "config: f41\next: a\nstate: mounted\nheld_by: build 12\nsnapshot: postinit\nvolume: +mock.f41.a\ncreated: 2026-01-02T03:04:05Z\n" +
		"mountpoint: /var/lib/mock/f41-a/root\ndevice: /dev/loop1\nvirtual_size_bytes: 0\nused_bytes: 0\n"
	if got != want {
		t.Fatalf("info:\n%s\nwant:\n%s", got, want)
	}
	// The JSON file has the same keys, in the same order, and the same values.
	var obj map[string]any
	if err := json.Unmarshal(jsonFile(info), &obj); err != nil {
		t.Fatal(err)
	}
	text := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		text[k] = v
	}
	for k, v := range obj {
		if fmt.Sprint(v) != text[k] && !(k == "virtual_size_bytes" || k == "used_bytes") {
			t.Errorf("%s: json %v, text %q", k, v, text[k])
		}
	}
	if len(obj) != len(text) {
		t.Errorf("json keys %v, text keys %v", obj, text)
	}
	cs := lvm.ConfigState{State: lvm.StateFailed, StateDetail: "init x: mkfs:\nboom"}
	if got := string(renderState(&cs, "t op: it broke")); got != "failed: init x: mkfs: boom\nlast_error: t op: it broke\n" {
		t.Fatalf("state %q", got)
	}
}
