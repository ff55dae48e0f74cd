package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/lvm/mock"
)

var bg = context.Background()

// Bystander names: a second config that lives beside the one under test,
// with a workdir holding a file and a snapshot of its own. Whatever
// happens to the config under test, the bystander must come out intact.
const (
	BystanderRoot = "bystander"
	BystanderExt  = "keep"
	BystanderSnap = "kept"
	bystanderFile = "root/kept"
)

// World is one test's world: a fixture (state dir, basedir, pool, the
// config under test) plus a bystander config with data in it.
type World struct {
	*lvmtest.Fixture
	T testing.TB
	// By is the bystander's config; in the fixture's pool, or in a pool
	// of its own (ByOwnPool) for tests of pool creation and removal.
	By    lvm.Config
	token string
	// Exts are the unique-exts whose current snapshot pictures track.
	Exts []string
}

// WorldOptions shape a World.
type WorldOptions struct {
	// ByOwnPool puts the bystander in a pool of its own.
	ByOwnPool bool
	// Exts are tracked besides "head" and the bystander's.
	Exts []string
}

// NewWorld makes a world with the bystander initialized, its workdir
// mounted with a file written in it, and its snapshot taken. The config
// under test is registered but not initialized.
func NewWorld(t testing.TB, env lvmtest.Env, o WorldOptions) *World {
	t.Helper()
	f := lvmtest.NewFixture(t, env)
	w := &World{Fixture: f, T: t, Exts: append([]string{lvm.DefaultExt, BystanderExt}, o.Exts...)}
	w.By = f.ConfigFor(BystanderRoot)
	if o.ByOwnPool {
		w.By.Pool = f.Pool + "b"
		t.Cleanup(func() {
			m := w.NewManagerFor()
			if err := m.Scrub(bg, BystanderRoot); err != nil {
				t.Logf("cleanup: scrub the bystander: %v", err)
			}
			if env.RemovePool != nil {
				env.RemovePool(t, f.StateDir, w.By.Pool)
			}
		})
	}
	f.M = w.NewManagerFor()
	if _, err := f.M.Init(bg, BystanderRoot, lvmtest.TestWriter(t)); err != nil {
		t.Fatalf("init the bystander: %v", err)
	}
	ws, err := f.M.CreateWorkdir(bg, BystanderRoot, "", BystanderExt)
	if err != nil {
		t.Fatalf("bystander workdir: %v", err)
	}
	var b [8]byte
	rand.Read(b[:])
	w.token = hex.EncodeToString(b[:])
	if err := os.WriteFile(filepath.Join(ws.Mountpoint, bystanderFile), []byte(w.token), 0o644); err != nil {
		t.Fatal(err)
	}
	exec.Command("sync").Run()
	if err := f.M.Snapshot(bg, BystanderRoot, BystanderExt, BystanderSnap); err != nil {
		t.Fatalf("bystander snapshot: %v", err)
	}
	return w
}

// NewManagerFor makes a Manager on the world's directories with both
// configs registered, recovering and scanning as a starting process does.
func (w *World) NewManagerFor() *lvm.Manager {
	w.T.Helper()
	return w.Fixture.NewManager(w.By)
}

// Restart is what a restarted daemon does: a new Manager that finishes
// interrupted operations, rescans, and mounts every workdir (Reconcile).
func (w *World) Restart() *lvm.Manager {
	w.T.Helper()
	m := w.NewManagerFor()
	if err := m.Reconcile(bg); err != nil {
		w.T.Errorf("reconcile after restart: %v", err)
	}
	w.M = m
	return m
}

// Roots are the configs a picture covers.
func (w *World) Roots() []string { return []string{w.Root, BystanderRoot} }

// Picture is the world's picture through a Manager.
func (w *World) Picture(m *lvm.Manager) Picture {
	return ManagerPicture(m, []lvm.Config{w.Config, w.By}, w.Exts)
}

// DiskPicture is the world's picture read from the backend and the
// records without a Manager.
func (w *World) DiskPicture() (Picture, error) {
	return DiskPicture(bg, w.backend(), []lvm.Config{w.Config, w.By}, w.Exts)
}

func (w *World) backend() backend.Backend {
	return w.Env.Backend(w.T, w.StateDir)
}

// CheckInvariants checks what must hold after any crash and restart:
//   - no operation is left half done (no intent file),
//   - the Manager shows exactly the volumes the backend has, nothing
//     hidden, nothing missing,
//   - every snapshot listed has its data (a clean filesystem with the
//     bootstrapped root in it),
//   - every workdir listed can be entered (mounted, the root readable),
//   - no mount and no loop device of ours is left that nothing listed
//     accounts for,
//   - every config is ready or uninitialized (never stuck initializing),
//   - the bystander's file and snapshot are intact.
func (w *World) CheckInvariants(m *lvm.Manager, r *Rec) {
	w.T.Helper()
	ents, _ := os.ReadDir(filepath.Join(w.StateDir, "intents"))
	var left []string
	kept := sparesKept(w.StateDir)
	// A live keeper makes and drops spares in the background: its
	// intents, and the temporaries they are written through, are work
	// under way, not left by a crash.
	spareIntent := func(name string) bool {
		return kept && strings.HasPrefix(strings.TrimPrefix(name, ".new-"), "spare-")
	}
	for _, e := range ents {
		if spareIntent(e.Name()) {
			continue
		}
		left = append(left, e.Name())
	}
	r.Check(len(left) == 0, "intents left after recovery: %v", left)

	st := m.State()
	be := w.backend()
	listedMounts := map[string]bool{}
	for _, pool := range uniq(w.Pool, w.By.Pool) {
		rep, err := be.Scan(bg, pool)
		var onDisk []string
		if err == nil {
			for _, v := range rep.Volumes {
				if v.Thin && (mock.IsOurs(w.Root, v.Name) || mock.IsOurs(BystanderRoot, v.Name)) {
					onDisk = append(onDisk, v.Name)
				}
			}
		} else if !r.Check(errors.Is(err, lvm.ErrNotFound), "scan %s: %v", pool, err) {
			continue
		}
		var listed []string
		ps := st.Pool(pool)
		if ps != nil {
			for _, cs := range ps.Configs {
				if cs.Root != w.Root && cs.Root != BystanderRoot {
					continue
				}
				r.Check(cs.State == lvm.StateReady || cs.State == lvm.StateUninitialized,
					"config %s is %s (%s) after recovery", cs.Root, cs.State, cs.StateDetail)
				for _, s := range cs.Snapshots {
					listed = append(listed, s.LV)
					w.checkSnapshotData(be, pool, s.LV, r)
				}
				for _, wd := range cs.Workdirs {
					listed = append(listed, wd.LV)
					listedMounts[wd.Mountpoint] = true
					issue, err := os.ReadFile(filepath.Join(wd.Mountpoint, "etc", "issue"))
					if r.Check(wd.Mounted && err == nil && strings.Contains(string(issue), "busybox"),
						"workdir %s.%s is listed but cannot be entered (mounted %v, /etc/issue: %v)", cs.Root, wd.Ext, wd.Mounted, err) {
						err := writeProbe(wd.Mountpoint)
						r.Check(err == nil, "workdir %s.%s cannot be written: %v", cs.Root, wd.Ext, err)
					}
				}
			}
		}
		r.Check(sameSet(onDisk, listed), "pool %s: backend holds %v, the Manager lists %v", pool, onDisk, listed)
	}

	// The bystander.
	_, bc := st.Config(BystanderRoot)
	r.Check(bc != nil && bc.Workdir(BystanderExt) != nil && bc.Snapshot(BystanderSnap) != nil,
		"the bystander lost its workdir or snapshot: %+v", bc)
	got, err := os.ReadFile(filepath.Join(w.By.ChrootDir(BystanderExt), bystanderFile))
	r.Check(err == nil && string(got) == w.token, "the bystander's file reads %q (%v), want %q", got, err, w.token)

	// Temporaries of atomic writes (records, sidecars, intents) that a
	// dead writer left, anywhere thinroot writes outside the volumes.
	var tmps []string
	for _, dir := range []string{w.Basedir, w.StateDir} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (p == w.PoolsDir() || (d.Name() == "root" && p != dir)) {
				return filepath.SkipDir // the pools' and volumes' own contents
			}
			if n := d.Name(); (strings.Contains(n, ".tmp-") || strings.HasPrefix(n, ".new-")) && !spareIntent(n) {
				tmps = append(tmps, strings.TrimPrefix(p, filepath.Dir(dir)+"/"))
			}
			return nil
		})
	}
	r.Check(len(tmps) == 0, "temporaries left behind: %v", tmps)

	// Mounts and loop devices.
	table, _ := mount.Table()
	for _, e := range table {
		if strings.HasPrefix(e.Mountpoint, w.Basedir+"/") {
			r.Check(listedMounts[e.Mountpoint], "leaked mount %s (no workdir listed there)", e.Mountpoint)
		}
	}
	if w.PoolsDir() != "" {
		w.checkPoolLeaks(st, table, r)
	}
}

// checkSnapshotData activates a snapshot and checks that the bootstrapped
// root is in it: on a block volume, a clean filesystem (e2fsck -fn) with
// the root's /etc/issue (debugfs); on a directory volume, the file.
func (w *World) checkSnapshotData(be backend.Backend, pool, lv string, r *Rec) {
	v, err := be.Activate(bg, pool, lv)
	if !r.Check(err == nil, "activate snapshot %s: %v", lv, err) {
		return
	}
	defer func() {
		if rel, ok := be.(backend.Releaser); ok {
			rel.Release(v)
		}
	}()
	if !be.Capabilities().Block {
		issue, err := os.ReadFile(filepath.Join(v.Mount.Source, "etc", "issue"))
		r.Check(err == nil && strings.Contains(string(issue), "busybox"), "snapshot %s has no bootstrapped root: %v %q", lv, err, issue)
		return
	}
	out, err := exec.Command("e2fsck", "-fn", v.Mount.Source).CombinedOutput()
	r.Check(err == nil, "snapshot %s: e2fsck -fn: %v\n%s", lv, err, out)
	out, err = exec.Command("debugfs", "-R", "cat /etc/issue", v.Mount.Source).CombinedOutput()
	r.Check(err == nil && strings.Contains(string(out), "busybox"), "snapshot %s has no bootstrapped root: %v %q", lv, err, out)
}

// PoolsDir is where the backend keeps pool images under the state
// directory (lvm/imagepool's Dir), "" for a backend that keeps none.
func (w *World) PoolsDir() string {
	switch w.Env.Name {
	case "file":
		return filepath.Join(w.StateDir, "pools")
	case "btrfs":
		return filepath.Join(w.StateDir, "btrfs")
	}
	return ""
}

// checkPoolLeaks: every loop device backed by a file under the state
// directory is a pool's image, a mounted workdir's or a live keeper's
// spare's; nothing but pools and a live keeper's spares is mounted
// there; and the pools hold no temporary files once the Manager has
// opened them.
func (w *World) checkPoolLeaks(st *lvm.State, table []mount.Entry, r *Rec) {
	mountedDev := map[string]bool{}
	for _, e := range table {
		mountedDev[e.Source] = true
	}
	var leaks []string
	// A live keeper attaches a spare's image before it mounts it, and
	// detaches it after it unmounts it: those are its while it lives, as
	// are the temporaries a spare's volume is written through (.tmp-<name>
	// for the clone, .<name>.json.tmp-N for its sidecar).
	kept := sparesKept(w.StateDir)
	keepers := func(path string) bool {
		name := strings.TrimPrefix(strings.TrimPrefix(filepath.Base(path), "."), "tmp-")
		return kept && strings.HasPrefix(name, lvm.SparePrefix)
	}
	// Autoclear loop devices detach shortly after their last user goes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaks = leaks[:0]
		for file, dev := range loopBacking() {
			if !strings.HasPrefix(file, w.StateDir+"/") || keepers(file) {
				continue
			}
			isPool := false
			for _, p := range st.Pools {
				isPool = isPool || file == filepath.Join(w.PoolsDir(), p.Name+".img")
			}
			if !isPool && !mountedDev[dev] {
				leaks = append(leaks, dev+" -> "+file)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Check(len(leaks) == 0, "leaked loop devices: %v", leaks)
	// A keeper of warm spares mounts them in <state>/spares, a private
	// bind of itself: those are its while it lives, and the next Manager
	// sweeps them once it is gone.
	spares := filepath.Join(w.StateDir, "spares")
	for _, e := range table {
		if !strings.HasPrefix(e.Mountpoint, w.StateDir+"/") {
			continue
		}
		if kept && (e.Mountpoint == spares || strings.HasPrefix(e.Mountpoint, spares+"/")) {
			continue
		}
		name := strings.TrimPrefix(e.Mountpoint, w.PoolsDir()+"/")
		r.Check(st.Pool(name) != nil && st.Pool(name).Stats.SizeBytes > 0, "leaked mount %s in the state dir", e.Mountpoint)
	}
	var tmps []string
	for _, pool := range uniq(w.Pool, w.By.Pool) {
		ents, _ := os.ReadDir(filepath.Join(w.PoolsDir(), pool, "volumes"))
		for _, e := range ents {
			// A live keeper may be cloning a spare right now.
			if keepers(e.Name()) {
				continue
			}
			if strings.HasPrefix(e.Name(), ".") {
				tmps = append(tmps, e.Name())
			}
		}
	}
	ents, _ := os.ReadDir(w.PoolsDir())
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			tmps = append(tmps, e.Name())
		}
	}
	r.Check(len(tmps) == 0, "temporary files left in the pools: %v", tmps)
}

// loopBacking maps backing files (deleted ones too, without the
// " (deleted)" mark) to their loop devices.
func loopBacking() map[string]string {
	out := map[string]string{}
	ents, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range ents {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		file := strings.TrimSuffix(strings.TrimRight(string(b), "\n"), " (deleted)")
		out[file] = "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(p)))
	}
	return out
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// writeProbe writes and removes a file in a mounted root, in a child
// process so that a filesystem left frozen (writes block until a thaw)
// shows as an error after a few seconds instead of a hung test; it thaws
// the filesystem then, so the test can clean up.
func writeProbe(root string) error {
	cmd := exec.Command("/bin/sh", "-c", `echo probe > "$1/tmp/.thinroot-probe" && rm "$1/tmp/.thinroot-probe"`, "sh", root)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		mount.Thaw(root)
		<-done
		return errors.New("a write blocked for 10s: the filesystem was frozen")
	}
}

// sparesKept tells whether a live process holds the spares lock of the
// state directory (lvm's keeper of warm spares).
func sparesKept(stateDir string) bool {
	l, err := lock.TryLock(filepath.Join(stateDir, "locks", "spares.lock"), true)
	if err != nil || l == nil {
		return err == nil
	}
	l.Release()
	return false
}
