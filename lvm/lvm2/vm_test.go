package lvm2_test

// Tests on real dm-thin. They run only inside the VM of testdata/vm/run
// (THINROOT_VM=1) and are skipped, saying so, anywhere else.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/lvm2"
	"github.com/thinroot/thinroot/lvm/lvm2/lvm2test"
	"github.com/thinroot/thinroot/lvm/mock"
	"golang.org/x/sys/unix"
)

func vmBackend(t *testing.T) *lvm2.Backend {
	t.Helper()
	vg := lvm2test.VG(t)
	b, err := lvm2.New(vg, lvm2.Options{Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// cleanupPool removes a test's pool with all its volumes at the end, by
// lvm2 directly: the backend never removes a pool that holds volumes.
func cleanupPool(t *testing.T, vg, pool string) {
	t.Cleanup(func() {
		lvm2test.TryLVM("lvremove", "-f", vg+"/"+pool)
	})
}

// calls runs fn and returns how many lvm2 commands it started.
func calls(b *lvm2.Backend, fn func()) int64 {
	before := b.Runner().Total()
	fn()
	return b.Runner().Total() - before
}

func isBlockDevice(t *testing.T, path string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("device %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Fatalf("%s is not a block device", path)
	}
}

func mount(t *testing.T, dev string) string {
	t.Helper()
	dir := t.TempDir()
	lvm2test.Cmd(t, "mount", dev, dir)
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func umount(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("umount %s: %v", dir, err)
	}
}

func volumeNames(r *backend.PoolReport) []string {
	var names []string
	for _, v := range r.Volumes {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return names
}

func sorted(names ...string) []string {
	sort.Strings(names)
	return names
}

func findVolume(r *backend.PoolReport, name string) *backend.Volume {
	for i := range r.Volumes {
		if r.Volumes[i].Name == name {
			return &r.Volumes[i]
		}
	}
	return nil
}

func TestVMLifecycle(t *testing.T) {
	b := vmBackend(t)
	ctx := t.Context()
	pool := lvm2test.Name(t, "pool")
	cleanupPool(t, b.VG(), pool)
	const root = "lifecycle-1-x86_64"
	head, postinit, work := mock.WorkdirVolume(root, "head"), mock.SnapshotVolume(root, "postinit"), mock.WorkdirVolume(root, "w1")

	if n := calls(b, func() {
		if err := b.CreatePool(ctx, backend.PoolSpec{Name: pool, Size: 256 << 20, MetadataSize: 8 << 20, WarnPercent: 70, RefusePercent: 85}); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("CreatePool: %d lvm2 commands, want 1", n)
	}
	if err := b.CreatePool(ctx, backend.PoolSpec{Name: pool, Size: 256 << 20}); !errors.Is(err, backend.ErrExists) {
		t.Errorf("CreatePool again: %v, want ErrExists", err)
	}
	var r *backend.PoolReport
	if n := calls(b, func() {
		var err error
		if r, err = b.Scan(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("Scan: %d lvm2 commands, want 1", n)
	}
	if r.SizeBytes != 256<<20 || r.WarnPercent != 70 || r.RefusePercent != 85 || r.Health != "" || len(r.Volumes) != 0 {
		t.Errorf("new pool: %+v", r)
	}
	out := lvm2test.LVM(t, "lvs", "--noheadings", "-o", "lv_when_full", b.VG()+"/"+pool)
	if strings.TrimSpace(out) != "error" {
		t.Errorf("pool when_full %q, want error", out)
	}

	// The base volume: active, formatted, written.
	var base *backend.Volume
	if n := calls(b, func() {
		var err error
		if base, err = b.Create(ctx, pool, head, 512<<20); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Errorf("Create: %d lvm2 commands, want 2", n)
	}
	if !base.Active || !base.Thin || base.VirtualSize != 512<<20 || base.Pool != pool || !strings.HasPrefix(base.Mount.Source, "/dev/dm-") {
		t.Errorf("base %+v", base)
	}
	isBlockDevice(t, base.Mount.Source)
	lvm2test.Cmd(t, "mkfs.ext4", "-q", base.Mount.Source)
	dir := mount(t, base.Mount.Source)
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from the base\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	umount(t, dir)

	// The snapshot: inactive, skipped by activation.
	snap, err := b.Snapshot(ctx, pool, head, postinit, backend.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Active || snap.Mount.Source != "" || snap.Origin != head || !snap.Thin {
		t.Errorf("snapshot %+v", snap)
	}
	attr := strings.TrimSpace(lvm2test.LVM(t, "lvs", "--noheadings", "-o", "lv_attr", b.VG()+"/"+postinit))
	if len(attr) != 10 || attr[9] != 'k' || attr[4] == 'a' {
		t.Errorf("snapshot lv_attr %q, want inactive with the skip flag", attr)
	}

	// The workdir: active in the same lvcreate, its device ready.
	var w *backend.Volume
	if n := calls(b, func() {
		if w, err = b.Snapshot(ctx, pool, postinit, work, backend.SnapshotOptions{Activate: true}); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("active Snapshot: %d lvm2 commands, want at most 2", n)
	}
	isBlockDevice(t, w.Mount.Source)
	dir = mount(t, w.Mount.Source)
	if b, err := os.ReadFile(filepath.Join(dir, "hello")); err != nil || string(b) != "from the base\n" {
		t.Errorf("workdir sees %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "work"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()

	// Busy while mounted.
	if err := b.Remove(ctx, pool, work); !errors.Is(err, backend.ErrBusy) {
		t.Errorf("Remove of a mounted volume: %v, want ErrBusy", err)
	}
	umount(t, dir)

	r, err = b.Scan(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := volumeNames(r), sorted(head, work, postinit); !slices.Equal(got, want) {
		t.Errorf("volumes %v, want %v", got, want)
	}
	if v := findVolume(r, work); v == nil || !v.Active || v.Origin != postinit || v.UsedBytes <= 0 || v.Created.IsZero() {
		t.Errorf("workdir in scan: %+v", v)
	}
	if v := findVolume(r, postinit); v == nil || v.Active {
		t.Errorf("snapshot in scan: %+v", v)
	}
	if r.DataPercent <= 0 || r.MetadataPercent <= 0 || r.UsedBytes <= 0 {
		t.Errorf("pool usage: %+v", r)
	}

	// Activating the snapshot overrides its skip flag.
	a, err := b.Activate(ctx, pool, postinit)
	if err != nil {
		t.Fatal(err)
	}
	isBlockDevice(t, a.Mount.Source)
	if n := calls(b, func() {
		if _, err := b.Activate(ctx, pool, postinit); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("Activate of an active volume: %d lvm2 commands, want 1", n)
	}

	if err := b.RemovePool(ctx, pool); !errors.Is(err, backend.ErrNotEmpty) {
		t.Errorf("RemovePool with volumes: %v, want ErrNotEmpty", err)
	}
	for _, name := range []string{work, postinit, head} {
		if err := b.Remove(ctx, pool, name); err != nil {
			t.Fatalf("Remove %s: %v", name, err)
		}
	}
	if err := b.Remove(ctx, pool, work); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Remove again: %v, want ErrNotFound", err)
	}
	pools, err := b.Pools(ctx)
	if err != nil || !slices.Contains(pools, pool) {
		t.Errorf("Pools = %v, %v", pools, err)
	}
	if err := b.RemovePool(ctx, pool); err != nil {
		t.Fatalf("RemovePool: %v", err)
	}
	if _, err := b.Scan(ctx, pool); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Scan after RemovePool: %v, want ErrNotFound", err)
	}
}

// Nothing outside the pool is reported, removed or changed, whatever it is
// called.
func TestVMForeignUntouched(t *testing.T) {
	b := vmBackend(t)
	ctx := t.Context()
	vg := b.VG()
	pool, other := lvm2test.Name(t, "pool"), lvm2test.Name(t, "other")
	cleanupPool(t, vg, pool)
	cleanupPool(t, vg, other)
	const root = "foreign-1-x86_64"
	// A plain LV and a thin volume of another pool, both named as if ours.
	linear, stranger := mock.SnapshotVolume(root, "linear"), mock.WorkdirVolume(root, "stranger")
	lvm2test.LVM(t, "lvcreate", "-L", "8m", "-n", linear, vg)
	t.Cleanup(func() { lvm2test.TryLVM("lvremove", "-f", vg+"/"+linear) })
	lvm2test.LVM(t, "lvcreate", "-T", vg+"/"+other, "-L", "16m")
	lvm2test.LVM(t, "lvcreate", "-T", vg+"/"+other, "-V", "32m", "-n", stranger)

	if err := b.CreatePool(ctx, backend.PoolSpec{Name: pool, Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, pool, mock.WorkdirVolume(root, "head"), 64<<20); err != nil {
		t.Fatal(err)
	}
	r, err := b.Scan(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got := volumeNames(r); !slices.Equal(got, []string{mock.WorkdirVolume(root, "head")}) {
		t.Errorf("Scan reports %v", got)
	}

	// A scrub as the Manager does it: every volume of ours in the pool.
	for _, v := range r.Volumes {
		if v.Thin && mock.IsOurs(root, v.Name) {
			if err := b.Remove(ctx, pool, v.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Asked outright, the backend still refuses.
	for _, name := range []string{linear, stranger, other} {
		if err := b.Remove(ctx, pool, name); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Remove(%s, %s) = %v, want ErrNotFound", pool, name, err)
		}
	}
	if _, err := b.Activate(ctx, pool, stranger); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Activate of another pool's volume: %v", err)
	}
	if err := b.RemovePool(ctx, linear); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("RemovePool of a plain LV: %v, want ErrNotFound", err)
	}
	if err := b.RemovePool(ctx, other); !errors.Is(err, backend.ErrNotEmpty) {
		t.Errorf("RemovePool of a pool with volumes: %v, want ErrNotEmpty", err)
	}
	if err := b.RemovePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	out := lvm2test.LVM(t, "lvs", "--noheadings", "-o", "lv_name", vg)
	for _, name := range []string{linear, stranger, other} {
		if !slices.Contains(strings.Fields(out), name) {
			t.Errorf("%s is gone; lvs: %s", name, out)
		}
	}
}

// Volumes made by mock's own command lines are recognised, and what
// thinroot makes from them mock can use in turn.
func TestVMMockInterop(t *testing.T) {
	b := vmBackend(t)
	ctx := t.Context()
	vg := b.VG()
	pool := lvm2test.Name(t, "mockbuild")
	cleanupPool(t, vg, pool)
	const root = "fedora-41-x86_64"
	head, postinit, ext := mock.WorkdirVolume(root, "head"), mock.SnapshotVolume(root, "postinit"), mock.WorkdirVolume(root, "b1")

	// mock's create_pool, create_base, make_snapshot and create_head.
	lvm2test.LVM(t, "lvcreate", "-T", vg+"/"+pool, "-L", "64m")
	lvm2test.LVM(t, "lvcreate", "-T", vg+"/"+pool, "-V", "128m", "-n", head)
	dev := strings.TrimSpace(lvm2test.LVM(t, "lvs", "--noheadings", "-o", "lv_path", vg+"/"+head))
	lvm2test.Cmd(t, "mkfs.ext4", "-q", dev)
	lvm2test.LVM(t, "lvcreate", "-s", vg+"/"+head, "-n", postinit)
	lvm2test.LVM(t, "lvcreate", "-s", vg+"/"+postinit, "-n", ext, "--setactivationskip", "n")

	r, err := b.Scan(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := volumeNames(r), sorted(head, ext, postinit); !slices.Equal(got, want) {
		t.Fatalf("Scan of mock's pool: %v, want %v", got, want)
	}
	for _, v := range r.Volumes {
		if !v.Thin || !mock.IsOurs(root, v.Name) {
			t.Errorf("%s: thin %v, ours %v", v.Name, v.Thin, mock.IsOurs(root, v.Name))
		}
		n, ok := mock.ParseVolume(v.Name, []string{root})
		if !ok || n.Root != root {
			t.Errorf("ParseLV(%s) = %+v", v.Name, n)
		}
	}
	if v := findVolume(r, postinit); v.Active || v.Origin != head {
		t.Errorf("mock's postinit: %+v", v)
	}
	if v := findVolume(r, ext); !v.Active || v.Origin != postinit {
		t.Errorf("mock's working volume: %+v", v)
	}
	// mock's pool queues when full; thinroot reports it, never changes it.
	if r.WarnPercent != backend.DefaultWarnPercent || r.RefusePercent != backend.DefaultRefusePercent {
		t.Errorf("thresholds of an untagged pool: %v/%v", r.WarnPercent, r.RefusePercent)
	}

	// thinroot's workdir from mock's snapshot, and its own snapshot.
	w, err := b.Snapshot(ctx, pool, postinit, mock.WorkdirVolume(root, "tr"), backend.SnapshotOptions{Activate: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := mount(t, w.Mount.Source)
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("thinroot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	umount(t, dir)
	snap := mock.SnapshotVolume(root, "mine")
	if _, err := b.Snapshot(ctx, pool, w.Name, snap, backend.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	// mock's view (its query_lvs fields) of what thinroot made.
	out := lvm2test.LVM(t, "lvs", "--noheadings", "--options", "lv_name,lv_attr,pool_lv", "--separator", "###", vg)
	for _, name := range []string{w.Name, snap} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Split(strings.TrimSpace(line), "###")
			if len(f) == 3 && f[0] == name {
				found = true
				if f[1][0] != 'V' || f[2] != pool || !strings.HasPrefix(strings.TrimPrefix(f[0], "+"), mock.ConfID(root)+".") {
					t.Errorf("mock would not take %s as its own: %q", name, line)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from lvs: %s", name, out)
		}
	}
	// mock's create_head from thinroot's snapshot, then mock's delete_head.
	lvm2test.LVM(t, "lvcreate", "-s", vg+"/"+snap, "-n", mock.WorkdirVolume(root, "again"), "--setactivationskip", "n")
	dev = strings.TrimSpace(lvm2test.LVM(t, "lvs", "--noheadings", "-o", "lv_path", vg+"/"+mock.WorkdirVolume(root, "again")))
	dir = mount(t, dev)
	if b, err := os.ReadFile(filepath.Join(dir, "marker")); err != nil || string(b) != "thinroot\n" {
		t.Errorf("mock's head from thinroot's snapshot sees %q, %v", b, err)
	}
	umount(t, dir)
	lvm2test.LVM(t, "lvremove", "-f", vg+"/"+mock.WorkdirVolume(root, "again"))
	if err := b.Remove(ctx, pool, ext); err != nil {
		t.Errorf("Remove of mock's working volume: %v", err)
	}
}

// A full pool errors at once (--errorwhenfull y), shows in Scan, refuses
// new volumes, keeps the others readable, and grows back from VG space.
func TestVMPoolFull(t *testing.T) {
	b := vmBackend(t)
	ctx := t.Context()
	vg := b.VG()
	pool := lvm2test.Name(t, "pool")
	cleanupPool(t, vg, pool)
	if err := b.CreatePool(ctx, backend.PoolSpec{Name: pool, Size: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	keep, err := b.Create(ctx, pool, "t_keep", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	lvm2test.Cmd(t, "dd", "if=/dev/urandom", "of="+keep.Mount.Source, "bs=1M", "count=2", "oflag=direct", "status=none")
	filler, err := b.Create(ctx, pool, "t_filler", 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("timeout", "120", "dd", "if=/dev/zero", "of="+filler.Mount.Source, "bs=1M", "count=64", "oflag=direct", "status=none")
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	t.Logf("dd into a full pool: %v after %v: %s", err, took.Round(time.Millisecond), strings.TrimSpace(string(out)))
	if err == nil {
		t.Fatal("writing 64 MiB into a 16 MiB pool succeeded")
	}
	if took > 30*time.Second {
		t.Errorf("the write took %v to fail: the pool queued instead of erroring", took)
	}

	r, err := b.Scan(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if r.Health != lvm2.HealthOutOfData || r.DataPercent != 100 || r.UsedBytes != r.SizeBytes {
		t.Errorf("full pool: health %q, data %v%%, used %d of %d", r.Health, r.DataPercent, r.UsedBytes, r.SizeBytes)
	}
	if _, err := b.Create(ctx, pool, "t_more", 16<<20); !errors.Is(err, backend.ErrPoolFull) {
		t.Errorf("Create in a full pool: %v, want ErrPoolFull", err)
	}
	// The other volume still reads.
	lvm2test.Cmd(t, "dd", "if="+keep.Mount.Source, "of=/dev/null", "bs=1M", "iflag=direct", "status=none")

	// No room in the VG for a huge step: refused before lvextend runs.
	before := b.Runner().Counts()
	if err := b.Extend(ctx, pool, 1<<40); !errors.Is(err, lvm2.ErrNoRoom) {
		t.Errorf("Extend by 1 TiB: %v, want ErrNoRoom", err)
	}
	if after := b.Runner().Counts(); after["lvextend"] != before["lvextend"] {
		t.Error("lvextend ran although the VG had no room")
	}
	vgi, err := b.VGInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Extend(ctx, pool, 64<<20); err != nil {
		t.Fatalf("Extend by 64 MiB (VG free %d): %v", vgi.Free, err)
	}
	r, err = b.Scan(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if r.SizeBytes != 80<<20 || r.Health != "" || r.DataPercent >= 100 {
		t.Errorf("after Extend: size %d, health %q, data %v%%", r.SizeBytes, r.Health, r.DataPercent)
	}
	if _, err := b.Create(ctx, pool, "t_more", 16<<20); err != nil {
		t.Errorf("Create after Extend: %v", err)
	}
}

// A metadata change survives its caller giving up: the context ends while
// lvcreate runs, and the volume is made whole and reported.
func TestVMContextDetached(t *testing.T) {
	b := vmBackend(t)
	vg := b.VG()
	pool := lvm2test.Name(t, "pool")
	cleanupPool(t, vg, pool)
	if err := b.CreatePool(t.Context(), backend.PoolSpec{Name: pool, Size: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	v, err := b.Create(ctx, pool, "t_detached", 32<<20)
	if err != nil {
		t.Fatalf("Create under a 20 ms context: %v", err)
	}
	if ctx.Err() == nil {
		t.Log("lvcreate finished inside 20 ms; the test proves little this time")
	}
	isBlockDevice(t, v.Mount.Source)
	if _, err := b.Scan(ctx, pool); err == nil {
		t.Error("Scan with a done context ran")
	}
}

// The lvm2 commands each operation costs, measured on real lvm2. The
// budget: Scan 1, a workdir (active snapshot) at most 2.
func TestVMInvocationCounts(t *testing.T) {
	b := vmBackend(t)
	ctx := t.Context()
	pool := lvm2test.Name(t, "pool")
	cleanupPool(t, b.VG(), pool)
	type row struct {
		op    string
		n     int64
		limit int64
		took  time.Duration
	}
	var rows []row
	measure := func(op string, limit int64, fn func() error) {
		t.Helper()
		before := b.Runner().Total()
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		rows = append(rows, row{op, b.Runner().Total() - before, limit, time.Since(start)})
	}
	measure("pool create", 1, func() error { return b.CreatePool(ctx, backend.PoolSpec{Name: pool, Size: 64 << 20}) })
	measure("thin create", 2, func() error { _, err := b.Create(ctx, pool, "t_base", 64<<20); return err })
	measure("snapshot", 2, func() error {
		_, err := b.Snapshot(ctx, pool, "t_base", "t_snap", backend.SnapshotOptions{})
		return err
	})
	for i := range 3 {
		measure(fmt.Sprintf("active snapshot (workdir %d)", i+1), 2, func() error {
			_, err := b.Snapshot(ctx, pool, "t_snap", fmt.Sprintf("t_work%d", i), backend.SnapshotOptions{Activate: true})
			return err
		})
	}
	measure("scan", 1, func() error { _, err := b.Scan(ctx, pool); return err })
	measure("activate (inactive snapshot)", 3, func() error { _, err := b.Activate(ctx, pool, "t_snap"); return err })
	measure("remove", 2, func() error { return b.Remove(ctx, pool, "t_work0") })
	measure("extend", 2, func() error { return b.Extend(ctx, pool, 8<<20) })
	for _, v := range []string{"t_work1", "t_work2", "t_snap", "t_base"} {
		if err := b.Remove(ctx, pool, v); err != nil {
			t.Fatal(err)
		}
	}
	measure("pool remove", 3, func() error { return b.RemovePool(ctx, pool) })
	var sb strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&sb, "\n  %-32s %d lvm2 command(s)  %v", r.op, r.n, r.took.Round(time.Millisecond))
		if r.n > r.limit {
			t.Errorf("%s: %d lvm2 commands, budget %d", r.op, r.n, r.limit)
		}
	}
	t.Logf("lvm2 invocations per operation:%s\n  by command: %v", sb.String(), b.Runner().Counts())
}
