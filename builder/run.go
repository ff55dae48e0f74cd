package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/rpmroot"
	"github.com/thinroot/thinroot/sandbox"
)

// Paths inside the buildroot.
const (
	SourceDir  = "/builddir/source"
	ResultsDir = "/builddir/results"
)

// run takes one build from its config's init to its final state. It is
// long because a build's steps share its workdir, hold and log, and read
// best in the order they happen.
func (b *Builder) run(ctx context.Context, e *entry) {
	id, req := e.b.ID, e.b.Request
	m := b.opts.Manager
	logf := func(format string, args ...any) {
		fmt.Fprintf(e.log, "[thinroot] "+format+"\n", args...)
	}
	var bg *buildGroup
	fail := func(state string, err error) {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errCancelled):
			state, err = StateCancelled, cause
		case errors.Is(cause, errShutdown):
			state, err = StateInterrupted, cause
		}
		logf("build %s: %v", state, err)
		var usage *Usage
		if bg != nil {
			usage = bg.close(b, id)
		}
		msg := err.Error()
		if oom := oomText(e.b.Limits, usage); oom != "" && state == StateError {
			// The bootstrap or the package manager was killed at the
			// memory limit: that is why it failed.
			state, msg = StateFailed, oom+": "+msg
		}
		b.setState(e, state, func(r *Build) { r.Error, r.Usage = msg, usage })
	}
	b.update(e, func(r *Build) { r.Started = time.Now().UTC() })
	defer e.log.close()
	info, err := b.opts.Resolve(req.Config)
	if err != nil {
		fail(StateError, err)
		return
	}
	// 0. A cgroup of its own, with its limits, for everything the build
	//    runs (its bootstrap too); killed whole when it ends.
	if bg, err = b.newGroup(id, e.b.Limits); err != nil {
		fail(StateError, err)
		return
	}
	defer bg.close(b, id)
	ctx = bg.context(ctx)
	if !e.b.Limits.IsZero() {
		logf("limits: %s", limitsText(e.b.Limits))
	}
	logf("build %s of config %s (uid %d)", id, req.Config, e.b.BuildUID)

	// 1. Make sure the config is initialized: exactly one process in the
	//    world bootstraps it; the others wait on the init lock.
	if _, cs := m.State().Config(req.Config); cs == nil || cs.State != lvm.StateReady {
		cat := &rpmroot.Catcher{W: e.log}
		did, err := m.InitWatch(ctx, req.Config, cat, func(phase string) {
			switch phase {
			case lvm.PhaseWaitingInit:
				logf("waiting for the init lock: another process is bootstrapping %s", req.Config)
				b.setState(e, StateWaitingInit, nil)
			case lvm.PhaseBootstrapping:
				logf("bootstrapping %s", req.Config)
				b.setState(e, StateBootstrapping, func(r *Build) { r.Bootstrapped = true })
			}
		})
		if err = cat.Err(err); err != nil {
			if b.bootstrapFailed(ctx, e, err) {
				return
			}
			fail(StateError, fmt.Errorf("init: %w", err))
			return
		}
		if !did {
			b.update(e, func(r *Build) { r.Bootstrapped = false })
		}
	}

	// 2. A workdir of its own, held so nobody removes it under the build.
	b.setState(e, StateCreatingWorkdir, nil)
	ext := e.b.UniqueExt
	if err := m.Hold(req.Config, ext, "build "+id); err != nil {
		fail(StateError, err)
		return
	}
	held := true
	unhold := func() {
		if held {
			m.Unhold(req.Config, ext)
			held = false
		}
	}
	defer unhold()
	var w *lvm.WorkdirState
	if req.InPlace {
		w, err = existingWorkdir(m, req.Config, ext)
	} else {
		w, err = m.CreateWorkdir(ctx, req.Config, b.snapshotFor(req), ext)
	}
	if err != nil {
		fail(StateError, fmt.Errorf("create workdir: %w", err))
		return
	}
	crashpoint.Hit("build:workdir-made")
	b.update(e, func(r *Build) { r.Workdir, r.Snapshot = w.Mountpoint, w.Snapshot })
	logf("workdir %s.%s from snapshot %s at %s", req.Config, ext, w.Snapshot, w.Mountpoint)
	removeWorkdir := func() {
		// A kept workdir is no longer the build's either: let go of it
		// before the build's end is on record.
		unhold()
		if req.Keep {
			logf("keeping workdir %s.%s", req.Config, ext)
			return
		}
		if err := RemoveWorkdirRetry(context.WithoutCancel(ctx), m, req.Config, ext); err != nil {
			logf("could not remove workdir %s.%s: %v", req.Config, ext, err)
			b.log.Error("remove build workdir", "build", id, "err", err)
			return
		}
		b.dropTempRecords(Build{Request: req, UniqueExt: ext})
	}

	// 3. The result directory, where mock keeps it, and the build itself.
	cfg, err := m.Config(req.Config)
	if err != nil {
		removeWorkdir()
		fail(StateError, err)
		return
	}
	resultDir := filepath.Join(cfg.WorkdirDir(ext), "result")
	prepare := prepareResults
	if req.ResultDir != "" {
		resultDir, prepare = req.ResultDir, keepResults
	}
	if err := prepare(resultDir, e.b.BuildUID, e.b.BuildGID); err != nil {
		removeWorkdir()
		fail(StateError, fmt.Errorf("result directory: %w", err))
		return
	}
	b.setState(e, StateBuilding, func(r *Build) { r.ResultDir = resultDir })
	crashpoint.Hit("build:start")
	var code int
	if req.IsRPM() {
		code, err = b.executeRPM(ctx, e, info, ext, resultDir)
	} else {
		code, err = b.execute(ctx, e, info, w.Mountpoint, resultDir)
	}
	crashpoint.Hit("build:finish")
	// Nothing of the build outlives its command: kill its cgroup, and
	// read what it used.
	usage := bg.close(b, id)
	oom := oomText(e.b.Limits, usage)

	// 4. Collect: the results are in place (bind-mounted); close the log
	//    copy, remove the workdir, record the outcome.
	b.setState(e, StateCollecting, nil)
	if err := giveResults(resultDir, e.b.Owner, e.b.BuildGID); err != nil {
		logf("could not give the results to uid %d: %v", e.b.Owner, err)
	}
	removeWorkdir()
	crashpoint.Hit("build:collected")
	switch {
	case errors.Is(context.Cause(ctx), errCancelled), errors.Is(context.Cause(ctx), errShutdown):
		fail(StateCancelled, context.Cause(ctx))
	case errors.Is(err, context.DeadlineExceeded):
		// One status for a timeout, whatever the killed command's own
		// (137 for SIGKILL) was: the record, the tree and the CLI say 11.
		timedOut := ExitTimedOut
		b.setState(e, StateTimedOut, func(r *Build) {
			r.Error = fmt.Sprintf("timed out after %v; its processes were killed (exit status %d)", rpmTimeout(req, info), code)
			r.ExitCode = &timedOut
			r.Usage = usage
		})
		logf("build timed out after %v", rpmTimeout(req, info))
	case err != nil && oom == "":
		fail(StateError, err)
	case code == 0 && err == nil:
		logf("build succeeded")
		b.setState(e, StateSucceeded, func(r *Build) { r.ExitCode, r.Usage = &code, usage })
	case oom != "":
		// The kernel killed a process at the memory limit: that, not the
		// exit status it left, is why the build failed.
		logf("build failed: %s", oom)
		b.setState(e, StateFailed, func(r *Build) { r.ExitCode, r.Error, r.Usage = &code, oom, usage })
	default:
		logf("build failed with exit status %d", code)
		b.setState(e, StateFailed, func(r *Build) { r.ExitCode, r.Usage = &code, usage })
	}
}

// execute runs the build command in the sandbox; it returns the command's
// exit status, or an error when it could not run or ran out of time.
func (b *Builder) execute(ctx context.Context, e *entry, info ConfigInfo, root, resultDir string) (int, error) {
	req := e.b.Request
	argv := req.Command
	if len(argv) == 0 {
		argv = info.Build
	}
	// The build user owns /builddir in its own clone.
	builddir := filepath.Join(root, "builddir")
	if err := os.MkdirAll(builddir, 0o755); err != nil {
		return -1, err
	}
	if err := os.Chown(builddir, e.b.BuildUID, e.b.BuildGID); err != nil {
		return -1, err
	}
	spec := sandbox.Spec{
		Root: root, Argv: argv, Dir: "/builddir",
		UID: e.b.BuildUID, GID: e.b.BuildGID,
		Hostname: "thinroot-" + e.b.UniqueExt,
		Network:  req.Network || info.Network,
		Env: append([]string{"THINROOT_BUILD_ID=" + e.b.ID, "THINROOT_CONFIG=" + req.Config,
			"SOURCE=" + SourceDir, "RESULTS=" + ResultsDir}, info.Env...),
		Binds: []sandbox.Bind{{Source: resultDir, Target: ResultsDir}},
	}
	if req.Source != "" {
		spec.Binds = append(spec.Binds, sandbox.Bind{Source: req.Source, Target: SourceDir, ReadOnly: true})
	}
	rctx := ctx
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout))
		defer cancel()
	}
	cmd, err := sandbox.Command(rctx, spec)
	if err != nil {
		return -1, err
	}
	buildLog, err := os.OpenFile(filepath.Join(resultDir, "build.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return -1, err
	}
	defer buildLog.Close()
	os.Chown(buildLog.Name(), e.b.BuildUID, e.b.BuildGID)
	e.log.tee(buildLog)
	defer e.log.tee(nil)
	out := io.Writer(e.log)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return exitCode(ee, err), context.DeadlineExceeded
	case ctx.Err() != nil:
		return -1, context.Cause(ctx)
	case errors.As(err, &ee):
		return exitCode(ee, err), nil
	case err != nil:
		return -1, err
	}
	return 0, nil
}

func exitCode(ee *exec.ExitError, err error) int {
	if ee == nil && !errors.As(err, &ee) {
		return -1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// prepareResults makes an empty result directory owned by the build user.
// Results of an earlier build with the same unique-ext are moved aside,
// never deleted.
func prepareResults(dir string, uid, gid int) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		// Two builds of one unique-ext can end within a second: the first
		// free name wins, never one that would fail the build.
		stamp := dir + ".old-" + strconv.FormatInt(time.Now().Unix(), 10)
		old := stamp
		for n := 2; ; n++ {
			err := os.Rename(dir, old)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTEMPTY) {
				return err
			}
			old = stamp + "-" + strconv.Itoa(n)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// keepResults makes a result directory given by the caller, as mock
// does, keeping what is in it (mock appends to its logs).
func keepResults(dir string, uid, gid int) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// existingWorkdir is the mounted workdir of ext, for a build in place.
func existingWorkdir(m Volumes, root, ext string) (*lvm.WorkdirState, error) {
	if _, cs := m.State().Config(root); cs != nil {
		if w := cs.Workdir(ext); w != nil && w.Mounted {
			return w, nil
		}
	}
	return nil, fmt.Errorf("no mounted workdir %s.%s to build in", root, ext)
}

// RemoveWorkdirRetry removes a build's workdir. The sandbox's mount
// namespace holds the workdir's filesystem until the kernel has torn it
// down, which can take a moment after the build's last process exits.
func RemoveWorkdirRetry(ctx context.Context, m Volumes, root, ext string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = m.RemoveWorkdir(ctx, root, ext)
		if err == nil || errors.Is(err, lvm.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, lvm.ErrBusy) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// canRead tells whether uid may search (and, for the target, read) p,
// going by owner and other bits only: group access is not trusted, since
// the daemon does not know the caller's groups for sure.
func canRead(p string, uid int, target bool) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mode := fi.Mode().Perm()
	var bits os.FileMode
	if int(st.Uid) == uid {
		bits = (mode >> 6) & 7
	} else {
		bits = mode & 7
	}
	need := os.FileMode(1) // search
	if target {
		need = 5 // read and search
	}
	if bits&need != need {
		return fmt.Errorf("uid %d may not read %s", uid, p)
	}
	return nil
}

// giveResults hands a finished build's result directory to the user who
// submitted it, in the build's group (mock's: the caller and the mock
// group), whoever the build ran as.
func giveResults(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
