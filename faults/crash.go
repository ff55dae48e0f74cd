package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/procs"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// The crash-point matrix: every multi-step operation, SIGKILLed at every
// named point inside it (internal/crashpoint), runs times over. After each
// kill a restarted process must find:
//   - the invariants of World.CheckInvariants (nothing half made is
//     published, no mount or loop device leaks, the bystander intact),
//   - a serial outcome: the picture is exactly the one before the
//     operation (it was rolled back) or the one the serial model gives
//     after it (it was finished),
//   - when rolled back, the next attempt of the same operation succeeds
//     and gives the model's picture.

// RunsEnv sets how many times each point is run (default 2).
const RunsEnv = "THINROOT_FAULTS_RUNS"

// Runs is the number of runs per case, from RunsEnv.
func Runs() int {
	if n, err := strconv.Atoi(os.Getenv(RunsEnv)); err == nil && n > 0 {
		return n
	}
	return 2
}

// External is the point name of a kill from outside while the bootstrap
// command runs (the process is not at any point of its own code).
const External = "init:during-bootstrap"

// backendPoints are points that only some backends pass: inside a
// backend's own code (pool images: file and btrfs; freezing for a copy:
// file), or a step only block backends have (mkfs). The matrix runs them
// on those backends only.
var backendPoints = map[string][]string{
	"pool-create:after-image":   {"file", "btrfs"},
	"pool-create:after-mount":   {"file", "btrfs"},
	"pool-remove:after-unmount": {"file", "btrfs"},
	"snapshot:while-frozen":     {"file"},
	"init:after-mkfs":           {"file", "lvm2"},
}

// PointsFor lists the points the matrix runs on a backend.
func PointsFor(backend string) []string {
	var out []string
	for _, p := range Points() {
		if passes(p, backend) {
			out = append(out, p)
		}
	}
	return out
}

// passes tells whether the backend passes point.
func passes(point, backend string) bool {
	only, ok := backendPoints[point]
	return !ok || slices.Contains(only, backend)
}

// crashOp is one operation of the matrix.
type crashOp struct {
	name   string
	points []string
	world  WorldOptions
	// setup brings a fresh world to the operation's precondition.
	setup func(w *World)
	// op is what the helper and the next attempt do.
	op Op
	// undo goes back from the operation's result to its precondition, for
	// the next run.
	undo func(w *World)
	// build, when set, makes this a build: the helper runs a one-build
	// daemon and the restart includes a new builder.
	build *builder.Request
}

// ops is the matrix. Every crashpoint.Hit in the code must appear in it
// (TestMatrixCoversEveryPoint checks).
func ops(t testing.TB) []crashOp {
	return []crashOp{
		{
			name:   "pool-create",
			points: []string{"pool-create:before-create", "pool-create:after-image", "pool-create:after-mount", "pool-create:after-create"},
			world:  WorldOptions{ByOwnPool: true},
			setup:  func(w *World) {},
			op:     Op{Kind: "ensure-pool"},
			undo:   func(w *World) { w.mustDo(w.M.RemovePool(bg, w.Pool)) },
		},
		{
			name: "init",
			points: []string{"init:before-base", "init:after-base", "init:after-mkfs", "init:before-bootstrap",
				External, "init:after-bootstrap", "init:before-postinit", "init:after-postinit", "init:after-unmount", "init:after-record",
				"init:after-base-remove"},
			setup: func(w *World) {},
			op:    Op{Kind: "init"},
			undo:  func(w *World) { w.mustDo(w.M.Scrub(bg, w.Root)) },
		},
		{
			// A snapshot of a mounted workdir (frozen for the copy) whose
			// ext's current snapshot is not postinit, so a rollback that
			// forgot the record would show.
			name:   "snapshot",
			points: []string{"snapshot:before-snapshot", "snapshot:while-frozen", "snapshot:after-snapshot", "snapshot:after-record"},
			world:  WorldOptions{Exts: []string{"w"}},
			setup: func(w *World) {
				w.Init(0)
				mid(w, "w", "mid")
			},
			op: Op{Kind: "snapshot", Ext: "w", Name: "new"},
			undo: func(w *World) {
				w.mustDo(w.M.RemoveSnapshot(bg, w.Root, "new"))
				w.mustDo(w.M.SetCurrent(bg, w.Root, "w", "mid"))
			},
		},
		{
			name: "workdir-create",
			points: []string{"workdir-create:before-clone", "workdir-create:after-clone", "workdir-create:after-mount",
				"workdir-create:after-record"},
			world: WorldOptions{Exts: []string{"victim"}},
			setup: initWithMid,
			op:    Op{Kind: "workdir-create", Snap: "mid", Ext: "victim"},
			undo:  removeVictim,
		},
		{
			// A keeper of warm spares that dies making one: a running
			// Manager and a restarted one remove what it left, and the
			// picture never shows it.
			name:   "spare-create",
			points: []string{"spare-create:after-clone", "spare-create:after-mount"},
			world:  WorldOptions{Exts: []string{"victim"}},
			setup:  func(w *World) { w.Init(0) },
			op:     Op{Kind: "spare-make", Snap: lvm.PostInit},
			undo:   func(w *World) {},
		},
		{
			// A workdir handed over from a spare, killed at every step:
			// rolled back (spare and workdir gone, record as it was), or
			// done.
			name: "spare-take",
			points: []string{"spare-take:before-rename", "spare-take:after-rename", "spare-take:after-move",
				"spare-take:after-record"},
			world: WorldOptions{Exts: []string{"victim"}},
			setup: initWithMid,
			op:    Op{Kind: "spare-take", Snap: "mid", Ext: "victim"},
			undo:  removeVictim,
		},
		{
			// A keeper that dies removing a spare as it stops.
			name:   "spare-remove",
			points: []string{"spare-remove:after-unmount"},
			world:  WorldOptions{Exts: []string{"victim"}},
			setup:  func(w *World) { w.Init(0) },
			op:     Op{Kind: "spare-remove", Snap: lvm.PostInit},
			undo:   func(w *World) {},
		},
		{
			name:   "workdir-remove",
			points: []string{"workdir-remove:after-unmount", "workdir-remove:after-remove"},
			world:  WorldOptions{Exts: []string{"victim"}},
			setup: func(w *World) {
				w.Init(0)
				w.must(w.M.CreateWorkdir(bg, w.Root, lvm.PostInit, "victim"))
			},
			op:   Op{Kind: "workdir-remove", Ext: "victim"},
			undo: func(w *World) { w.must(w.M.CreateWorkdir(bg, w.Root, lvm.PostInit, "victim")) },
		},
		{
			// The snapshot removed is head's current one: its record must
			// fall back to postinit with it, never without it.
			name:   "remove-snapshot",
			points: []string{"snapshot-remove:after-records", "snapshot-remove:after-remove"},
			world:  WorldOptions{Exts: []string{"t"}},
			setup: func(w *World) {
				w.Init(0)
				mid(w, "t", "gone")
				w.mustDo(w.M.RemoveWorkdir(bg, w.Root, "t"))
				w.mustDo(w.M.SetCurrent(bg, w.Root, lvm.DefaultExt, "gone"))
			},
			op: Op{Kind: "remove-snapshot", Snap: "gone"},
			undo: func(w *World) {
				mid(w, "t", "gone")
				w.mustDo(w.M.RemoveWorkdir(bg, w.Root, "t"))
				w.mustDo(w.M.SetCurrent(bg, w.Root, lvm.DefaultExt, "gone"))
			},
		},
		{
			name:   "scrub",
			points: []string{"scrub:after-unmount", "scrub:after-first-remove", "scrub:after-remove", "scrub:after-records"},
			world:  WorldOptions{Exts: []string{"w1"}},
			setup:  scrubSetup,
			op:     Op{Kind: "scrub"},
			undo:   scrubSetup,
		},
		{
			// The last config of a pool: scrub removes the pool too.
			name:   "scrub-last",
			points: []string{"scrub:after-first-remove", "scrub:after-records", "pool-remove:after-unmount"},
			world:  WorldOptions{ByOwnPool: true, Exts: []string{"w1"}},
			setup:  scrubSetup,
			op:     Op{Kind: "scrub"},
			undo:   scrubSetup,
		},
		{
			name:   "build",
			points: []string{"build:workdir-made", "build:start", "build:finish", "build:collected"},
			world:  WorldOptions{Exts: []string{"bx"}},
			setup:  func(w *World) { w.Init(0) },
			build: &builder.Request{UniqueExt: "bx", Command: []string{"/bin/sh", "-c",
				`echo started; echo made > "$RESULTS/out"`}},
			undo: func(w *World) {},
		},
	}
}

func scrubSetup(w *World) {
	w.Init(0)
	ws := w.must(w.M.CreateWorkdir(bg, w.Root, lvm.PostInit, "w1"))
	if err := os.WriteFile(filepath.Join(ws.Mountpoint, "root", "data"), []byte("x"), 0o644); err != nil {
		w.T.Fatal(err)
	}
	w.mustDo(w.M.Snapshot(bg, w.Root, "w1", "s1"))
}

func (w *World) must(ws *lvm.WorkdirState, err error) *lvm.WorkdirState {
	w.T.Helper()
	if err != nil {
		w.T.Fatal(err)
	}
	return ws
}

func (w *World) mustDo(err error) {
	w.T.Helper()
	if err != nil {
		w.T.Fatal(err)
	}
}

// Points lists every point of the matrix, in order.
func Points() []string {
	var out []string
	for _, o := range ops(nil) {
		out = append(out, o.points...)
	}
	return out
}

// RunCrashMatrix runs the matrix on env's backend.
func RunCrashMatrix(t *testing.T, env lvmtest.Env) {
	lvmtest.RequireCrashPoints(t)
	for _, op := range ops(t) {
		t.Run(op.name, func(t *testing.T) { runCrashOp(t, env, op) })
	}
}

func runCrashOp(t *testing.T, env lvmtest.Env, op crashOp) {
	// One world serves the op's points in turn (each run ends back at the
	// precondition); a point that fails leaves a world nobody should trust,
	// so the next point gets a fresh one. Worlds belong to the op's test,
	// so they outlive the point that made them.
	var w *World
	failed := true
	for _, point := range op.points {
		if !passes(point, env.Name) {
			continue
		}
		if failed {
			w = NewWorld(t, env, op.world)
			op.setup(w)
		}
		failed = !t.Run(point, func(t *testing.T) {
			w.T, w.Fixture.T = t, t
			r := Record(t, "crash", op.name+" @ "+point, env.Name)
			for run := 0; run < Runs() && !t.Failed(); run++ {
				r.Run()
				crashOnce(t, w, op, point, r)
			}
		})
		w.T, w.Fixture.T = t, t
	}
}

// crashOnce is one run: kill the operation at point, restart, check,
// retry, undo.
func crashOnce(t *testing.T, w *World, op crashOp, point string, r *Rec) {
	before := w.Picture(w.M)
	o := op.op
	o.Root = w.Root
	after, ok := before, true
	if op.build == nil {
		after, ok = Apply(before, o)
		r.Must(ok, "the model says %s cannot run on %s", o, before)
	}
	job := Job{Op: o.Kind, Backend: w.Env.Name, StateDir: w.StateDir, Basedir: w.Basedir, Configs: []lvm.Config{w.Config, w.By},
		Root: w.Root, Snap: o.Snap, Ext: o.Ext, Name: o.Name}
	var info builder.ConfigInfo
	var req builder.Request
	if op.build != nil {
		req = *op.build
		req.Config = w.Root
		info = builder.ConfigInfo{Root: w.Root}
		job = withBuild(job, req, info)
	}
	kill(t, w, job, point, r)

	// A daemon that was running all along, at its next refresh, must show
	// nothing half made either: the dead process's operation is finished
	// or hidden, never listed as it was left.
	if _, err := w.M.Refresh(bg); err != nil {
		r.Check(false, "refresh of the running manager after a kill at %s: %v", point, err)
	}
	if op.build == nil {
		w.CheckInvariants(w.M, r)
		running := w.Picture(w.M).String()
		r.Check(running == before.String() || running == after.String(),
			"after a kill at %s the running manager shows neither the picture before nor after %s:\nbefore %s\nafter  %s\ngot    %s",
			point, o, before, after, running)
	}

	// The restart, and what it must find.
	m := w.Restart()
	var b *builder.Builder
	if op.build != nil {
		b = startBuilder(t, w, info)
		checkInterruptedBuild(t, w, b, point, r)
	}
	w.CheckInvariants(m, r)
	got := w.Picture(m)
	switch got.String() {
	case before.String():
		if before.String() == after.String() {
			r.Outcome("no-change")
		} else {
			r.Outcome("rolled-back")
		}
	case after.String():
		r.Outcome("completed")

	default:
		r.Check(false, "after a kill at %s the picture is neither the one before nor the one after %s:\nbefore %s\nafter  %s\ngot    %s",
			point, o, before, after, got)
		return
	}
	if disk, err := w.DiskPicture(); r.Check(err == nil, "disk picture: %v", err) {
		r.Check(disk.String() == got.String(), "the Manager and the disk disagree:\nmanager %s\ndisk    %s", got, disk)
	}

	// The next attempt of the same operation.
	if got.String() == before.String() {
		if op.build != nil {
			retryBuild(t, w, b, req, r)
		} else {
			err := lvmtest.Perform(bg, w.M, job)
			r.Check(err == nil, "the next %s after a kill at %s: %v", o, point, err)
		}
		w.CheckInvariants(w.M, r)
		now := w.Picture(w.M)
		r.Check(now.String() == after.String(), "after the next attempt:\nwant %s\ngot  %s", after, now)
	}
	if t.Failed() {
		return
	}
	op.undo(w)
	now := w.Picture(w.M)
	r.Check(now.String() == before.String(), "undo did not restore the precondition:\nwant %s\ngot  %s", before, now)
}

// kill runs job in a helper armed at point and checks it died there.
func kill(t *testing.T, w *World, job Job, point string, r *Rec) {
	t.Helper()
	armed := point
	var ready string
	if point == External {
		// The bootstrap holds a file open in the new root and waits, as a
		// package manager in the middle of its work does.
		armed = ""
		ready = filepath.Join(t.TempDir(), "bootstrap-started")
		cfg := w.Config
		cfg.Bootstrap = []string{"/bin/sh", "-c", `exec 3>"$ROOT/partial"; echo half >&3; touch "$READY"; sleep 60`}
		cfg.BootstrapEnv = []string{"READY=" + ready}
		job.Configs = []lvm.Config{cfg, w.By}
	}
	cmd, err := lvmtest.HelperCmd(job, armed)
	if err != nil {
		t.Fatal(err)
	}
	// Output goes to a file, not a pipe: a pipe would make Wait wait for
	// every process that inherited it, hiding any the kill left running.
	logf, err := os.CreateTemp(t.TempDir(), "helper-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	out := fileText{logf.Name()}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if ready != "" {
		deadline := testguard.Deadline(t)
		for {
			if _, err := os.Stat(ready); err == nil {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("the helper ended (%v) before its bootstrap started:\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the bootstrap did not start:\n%s", out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Kill()
	}
	select {
	case err = <-done:
	case <-time.After(testguard.Remaining(t)):
		cmd.Process.Kill()
		t.Fatalf("the helper did not die at %s:\n%s", point, out.String())
	}
	var ee *exec.ExitError
	killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() &&
		ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	r.Must(killed && (ready != "" || strings.Contains(out.String(), "crashpoint: "+point)),
		"the helper was not killed at %s (%v):\n%s", point, err, out.String())
}

func startBuilder(t *testing.T, w *World, info builder.ConfigInfo) *builder.Builder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := builder.New(ctx, builder.Options{StateDir: w.StateDir, Jobs: 1, Manager: w.M, Log: w.Log,
		Resolve: func(string) (builder.ConfigInfo, error) { return info, nil }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	b.Start(ctx)
	t.Cleanup(func() { cancel(); b.Wait() })
	return b
}

// checkInterruptedBuild: the build the dead daemon ran is on record as
// interrupted, its workdir is gone, and what it had made is kept.
func checkInterruptedBuild(t *testing.T, w *World, b *builder.Builder, point string, r *Rec) {
	t.Helper()
	list := b.List()
	if !r.Check(len(list) > 0, "the restarted builder has no record of the killed build") {
		return
	}
	rec := list[0]
	r.Check(rec.State == builder.StateInterrupted, "the killed build is %s after the restart, want interrupted", rec.State)
	_, cs := w.M.State().Config(w.Root)
	r.Check(cs != nil && cs.Workdir(rec.UniqueExt) == nil, "the killed build's workdir %s is still there", rec.UniqueExt)
	if point == "build:finish" || point == "build:collected" {
		data, err := os.ReadFile(filepath.Join(rec.ResultDir, "out"))
		r.Check(err == nil && string(data) == "made\n", "the killed build's result is lost: %q %v", data, err)
	}
	lvmtest.WaitFor(t, 10*time.Second, "the killed build's processes to go", func() bool {
		return len(procs.Marked("THINROOT_BUILD_ID="+rec.ID)) == 0
	})
}

func retryBuild(t *testing.T, w *World, b *builder.Builder, req builder.Request, r *Rec) {
	t.Helper()
	rec, err := b.Submit(req, 0)
	if !r.Check(err == nil, "resubmit: %v", err) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fin, err := b.WaitFor(ctx, rec.ID)
	r.Check(err == nil && fin.State == builder.StateSucceeded, "the next build: %v %s %s", err, fin.State, fin.Error)
	data, err := os.ReadFile(filepath.Join(fin.ResultDir, "out"))
	r.Check(err == nil && string(data) == "made\n", "the next build's result: %q %v", data, err)
}

// fileText reads a log file when printed.
type fileText struct{ path string }

func (f fileText) String() string {
	b, _ := os.ReadFile(f.path)
	return string(b)
}

var _ = fmt.Sprint

// initWithMid initializes the config and makes the snapshot mid, with no
// workdir left: where a new workdir is made from.
func initWithMid(w *World) {
	w.Init(0)
	mid(w, "t", "mid")
	w.mustDo(w.M.RemoveWorkdir(bg, w.Root, "t"))
}

// removeVictim undoes a workdir made for "victim" and its current record.
func removeVictim(w *World) {
	w.mustDo(w.M.RemoveWorkdir(bg, w.Root, "victim"))
	w.mustDo(w.M.SetCurrent(bg, w.Root, "victim", lvm.PostInit))
}

// mid makes a workdir ext of postinit and snapshots it as snap.
func mid(w *World, ext, snap string) {
	w.must(w.M.CreateWorkdir(bg, w.Root, lvm.PostInit, ext))
	w.mustDo(w.M.Snapshot(bg, w.Root, ext, snap))
}
