package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/metrics"
	"github.com/thinroot/thinroot/rpmroot"
)

// ConfigInfo is what the builder needs to know of a config besides what
// the Manager holds.
type ConfigInfo struct {
	Root string
	// Build is the config's build argv (thinroot's build key), used when a
	// request names no command.
	Build []string
	// Network lets the config's builds use the host network.
	Network bool
	// BuildUID and BuildGID are used when the caller is root (default
	// 1000, the bootstrap's build user).
	BuildUID, BuildGID int
	// AllowRoot lets builds of root's requests run as root inside.
	AllowRoot bool
	// Env is added to the build's environment.
	Env []string
	// RPM is how the config builds RPMs (nil when it cannot).
	RPM *rpmroot.Config
	// Limits are the config's resource limits (config_opts['thinroot']
	// memory_max, pids_max, cpus), over the daemon's.
	Limits Limits
}

// Options configure a Builder.
type Options struct {
	StateDir string // builds live in StateDir/builds/<id>/
	Jobs     int    // builds running at once (default: number of CPUs)
	Manager  Volumes
	// Resolve returns a config's build settings; ErrUnknownConfig (or any
	// error) refuses the request.
	Resolve func(root string) (ConfigInfo, error)
	Log     *slog.Logger
	// Limits are the host's default resource limits of a build.
	Limits Limits
	// Cgroups makes each build's cgroup; nil runs builds without one
	// (and refuses builds with limits).
	Cgroups *cgroup.Manager
	// Retention is which finished builds the daemon keeps (retention.go).
	Retention Retention
	// Metrics, if set, counts and times builds.
	Metrics *metrics.Metrics
	// KeepInterrupted leaves the workdirs of interrupted builds in place:
	// mock's roots outlive the process that built in them.
	KeepInterrupted bool
}

// Errors the API maps to status codes.
var (
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownConfig (with ErrBadRequest) refuses a build of a config
	// the daemon does not serve; Resolve wraps it.
	ErrUnknownConfig = errors.New("unknown config")
	// ErrUnknownSnapshot refuses a build from a snapshot the config lacks.
	ErrUnknownSnapshot = errors.New("unknown snapshot")
	ErrNoBuild         = errors.New("no such build")
	ErrFinished        = errors.New("build already finished")
	ErrForbidden       = errors.New("not allowed")
)

// Refusal is an error that reads as its message and is (errors.Is) its
// kind: ErrUnknownConfig, ErrUnknownSnapshot...
func Refusal(kind error, msg string) error { return &refusal{msg: msg, kind: kind} }

type refusal struct {
	msg  string
	kind error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// Builder queues and runs builds.
type Builder struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	builds  map[string]*entry
	queues  map[string][]*entry // per config, FIFO
	rr      []string            // configs in round-robin order
	running int
	wake    chan struct{}
	changed chan struct{} // closed and replaced on every change
	wg      sync.WaitGroup
	pruneMu sync.Mutex // one Prune at a time
}

type entry struct {
	b      Build
	log    *logStream
	cancel context.CancelCauseFunc
	// commitMu orders the changes to b (commit).
	commitMu sync.Mutex
	// own is held from submission until the build is final: it tells
	// another daemon on the same state directory that this build is not
	// its to close.
	own *lvm.HeldLock
}

var (
	errCancelled = errors.New("cancelled by a user")
	errShutdown  = errors.New("the daemon is stopping")
)

// New loads the build records from disk. Builds that were running when
// the daemon died are marked interrupted and their workdirs removed.
func New(ctx context.Context, opts Options) (*Builder, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	b := &Builder{opts: opts, log: opts.Log, builds: map[string]*entry{}, queues: map[string][]*entry{},
		wake: make(chan struct{}, 1), changed: make(chan struct{})}
	if err := os.MkdirAll(b.dir(), 0o755); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(b.dir())
	if err != nil {
		return nil, err
	}
	for _, d := range ents {
		b.sweepRecordTemps(d.Name())
		var rec Build
		data, err := os.ReadFile(filepath.Join(b.dir(), d.Name(), "build.json"))
		if err != nil || json.Unmarshal(data, &rec) != nil || rec.ID != d.Name() {
			continue
		}
		e := &entry{b: rec, log: finishedLog(b.logPath(rec.ID))}
		if !Final(rec.State) {
			h, err := lvm.TryLock(b.ownPath(rec.ID), true)
			switch {
			case err != nil:
				b.log.Warn("build record lock", "build", rec.ID, "err", err)
			case h == nil:
				// Another daemon on this state directory runs or queues
				// it: not ours to close.
				b.log.Info("build belongs to another running daemon", "build", rec.ID, "state", rec.State)
			default:
				b.interrupted(ctx, e)
				h.Release()
			}
		}
		b.builds[rec.ID] = e
	}
	b.sweepGroups()
	return b, nil
}

func (b *Builder) dir() string                 { return filepath.Join(b.opts.StateDir, "builds") }
func (b *Builder) buildDir(id string) string   { return filepath.Join(b.dir(), id) }
func (b *Builder) logPath(id string) string    { return filepath.Join(b.buildDir(id), "log") }
func (b *Builder) recordPath(id string) string { return filepath.Join(b.buildDir(id), "build.json") }
func (b *Builder) ownPath(id string) string    { return filepath.Join(b.buildDir(id), "lock") }

// interrupted closes the record of a build the previous daemon left
// running and removes its workdir; nothing else is touched.
func (b *Builder) interrupted(ctx context.Context, e *entry) {
	was := e.b.State
	e.b.State = StateInterrupted
	e.b.Finished = time.Now().UTC()
	e.b.Error = fmt.Sprintf("the daemon stopped while the build was %s", was)
	e.b.Phases = append(e.b.Phases, Phase{State: StateInterrupted, At: e.b.Finished})
	os.RemoveAll(b.rpmWorkDir(e.b.ID))
	if b.opts.Manager != nil && !b.opts.KeepInterrupted && (e.b.Workdir != "" || b.madeWorkdir(e.b)) {
		err := b.opts.Manager.RemoveWorkdir(ctx, e.b.Request.Config, e.b.UniqueExt)
		if err != nil && !errors.Is(err, lvm.ErrNotFound) {
			b.log.Warn("remove the workdir of an interrupted build", "build", e.b.ID, "err", err)
		}
	}
	b.log.Warn("build was interrupted by a daemon restart", "build", e.b.ID, "was", was)
	if err := b.save(&e.b); err != nil {
		b.log.Error("save build record", "build", e.b.ID, "err", err)
	}
}

// sweepRecordTemps removes the temporaries a daemon killed in the middle
// of writing a build's record left (fsutil.WriteFileAtomic's
// .build.json.tmp-*), unless a live daemon owns the build.
func (b *Builder) sweepRecordTemps(id string) {
	tmps, _ := filepath.Glob(filepath.Join(b.buildDir(id), ".build.json.tmp-*"))
	if len(tmps) == 0 {
		return
	}
	h, err := lvm.TryLock(b.ownPath(id), true)
	if err != nil || h == nil {
		return
	}
	defer h.Release()
	for _, p := range tmps {
		os.Remove(p)
	}
}

// madeWorkdir tells whether a build whose record names no workdir made
// one all the same: its daemon died after creating it and before
// recording it. The build's ext then has a workdir made after the build
// started creating one (volume times may have whole seconds only); an
// older one is somebody else's and stays.
func (b *Builder) madeWorkdir(rec Build) bool {
	var since time.Time
	for _, p := range rec.Phases {
		if p.State == StateCreatingWorkdir {
			since = p.At
		}
	}
	if since.IsZero() {
		return false
	}
	_, cs := b.opts.Manager.State().Config(rec.Request.Config)
	if cs == nil {
		return false
	}
	w := cs.Workdir(rec.UniqueExt)
	return w != nil && !w.Created.Before(since.Truncate(time.Second))
}

// Start runs the dispatcher until ctx ends; Wait waits for running builds.
func (b *Builder) Start(ctx context.Context) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.dispatch(ctx)
	}()
	if !b.opts.Retention.IsZero() {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.retain(ctx)
		}()
	}
}

// Wait waits for the dispatcher and every running build to end.
func (b *Builder) Wait() { b.wg.Wait() }

// Shutdown stops every running build (they end interrupted, their
// workdirs removed) and waits for them and for the dispatcher, whose
// context the caller cancels first. Queued builds stay on disk and show
// as interrupted at the next start.
func (b *Builder) Shutdown() {
	b.mu.Lock()
	for _, e := range b.builds {
		if e.cancel != nil && !Final(e.b.State) {
			e.cancel(errShutdown)
		}
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// snapshotExists refuses, at submission rather than when the build runs,
// a snapshot the config does not have. Before the config's bootstrap only
// postinit will exist. The picture is rescanned once before refusing, so
// a snapshot made a moment ago by another process counts.
func (b *Builder) snapshotExists(root, snap string) error {
	m := b.opts.Manager
	if m == nil {
		return nil
	}
	has := func() (bool, []string) {
		_, cs := m.State().Config(root)
		if cs == nil || len(cs.Snapshots) == 0 {
			return snap == lvm.PostInit, nil
		}
		var names []string
		for _, s := range cs.Snapshots {
			if s.Name == snap {
				return true, nil
			}
			names = append(names, s.Name)
		}
		return false, names
	}
	if ok, _ := has(); ok {
		return nil
	}
	m.Refresh(context.Background())
	ok, names := has()
	switch {
	case ok:
		return nil
	case len(names) == 0:
		return Refusal(ErrUnknownSnapshot, fmt.Sprintf("config %s has no snapshot %s: it is not initialized yet, and its bootstrap makes only %s", root, snap, lvm.PostInit))
	}
	return Refusal(ErrUnknownSnapshot, fmt.Sprintf("config %s has no snapshot %s (it has %s)", root, snap, strings.Join(names, ", ")))
}

func newID() string {
	var r [2]byte
	rand.Read(r[:])
	return strconv.FormatInt(time.Now().UnixMilli(), 36) + hex.EncodeToString(r[:])
}

// Submit validates a request and queues it. owner is the caller's uid.
// It is long because it checks a request against each of its rules in
// turn, each with its own message, before anything is queued.
func (b *Builder) Submit(req Request, owner int) (Build, error) {
	if req.Config == "" {
		return Build{}, fmt.Errorf("%w: no config", ErrBadRequest)
	}
	info, err := b.opts.Resolve(req.Config)
	if err != nil {
		if errors.Is(err, ErrUnknownConfig) {
			return Build{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return Build{}, fmt.Errorf("%w: config %s: %v", ErrBadRequest, req.Config, err)
	}
	id := newID()
	ext := req.UniqueExt
	if ext == "" {
		ext = "b-" + id
	}
	if err := lvm.ValidateExt(req.Config, ext); err != nil {
		return Build{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Snapshot != "" {
		if err := lvm.ValidateSnapshot(req.Config, req.Snapshot); err != nil {
			return Build{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		if err := b.snapshotExists(req.Config, req.Snapshot); err != nil {
			return Build{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	if req.IsRPM() {
		if info.RPM == nil {
			return Build{}, fmt.Errorf("%w: config %s cannot build RPMs (no dnf, dnf5 or yum package manager)", ErrBadRequest, req.Config)
		}
		if err := checkRPMRequest(&req, owner); err != nil {
			return Build{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	} else if len(req.Command) == 0 && len(info.Build) == 0 {
		return Build{}, fmt.Errorf("%w: config %s has no build command; give one", ErrBadRequest, req.Config)
	}
	if req.Source != "" {
		if err := checkSource(req.Source, owner); err != nil {
			return Build{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	limits, err := b.limitsFor(info, req, owner)
	if err != nil {
		return Build{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	uid, gid := buildUser(info, owner)
	if req.IsRPM() {
		// mock's build user: the caller's uid (root's builds: the
		// config's chrootuid), the mock group's gid.
		if owner == 0 && !info.AllowRoot {
			uid = info.RPM.UID
		}
		gid = info.RPM.GID
	}
	rec := Build{ID: id, Request: req, State: StateQueued, Submitted: time.Now().UTC(), Owner: owner,
		BuildUID: uid, BuildGID: gid, UniqueExt: ext, Limits: limits}
	rec.Phases = []Phase{{State: StateQueued, At: rec.Submitted}}
	if err := os.MkdirAll(b.buildDir(id), 0o755); err != nil {
		return Build{}, err
	}
	own, err := lvm.TryLock(b.ownPath(id), true)
	if err != nil || own == nil {
		return Build{}, fmt.Errorf("lock build %s: %v", id, err)
	}
	ls, err := newLogStream(b.logPath(id))
	if err != nil {
		own.Release()
		return Build{}, err
	}
	if err := b.save(&rec); err != nil {
		own.Release()
		return Build{}, err
	}
	e := &entry{b: rec, log: ls, own: own}
	b.mu.Lock()
	b.builds[id] = e
	if _, ok := b.queues[req.Config]; !ok {
		b.rr = append(b.rr, req.Config)
	}
	b.queues[req.Config] = append(b.queues[req.Config], e)
	b.notifyLocked()
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	b.log.Info("build queued", "build", id, "config", req.Config, "owner", owner)
	return rec, nil
}

// buildUser picks the uid a build runs as: the caller's, as mock does;
// for root's requests the config's build user, never root unless the
// config allows it.
func buildUser(info ConfigInfo, owner int) (int, int) {
	if owner != 0 {
		return owner, owner
	}
	if info.AllowRoot {
		return 0, 0
	}
	uid, gid := info.BuildUID, info.BuildGID
	if uid == 0 {
		uid = 1000
	}
	if gid == 0 {
		gid = uid
	}
	return uid, gid
}

// checkSource refuses a source the caller could not read themselves: the
// daemon runs as root, so it must not hand out what its callers cannot see.
func checkSource(path string, owner int) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("source %q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("source: %v", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("source %s is not a directory", path)
	}
	if owner == 0 {
		return nil
	}
	for p := path; ; p = filepath.Dir(p) {
		if err := canRead(p, owner, p == path); err != nil {
			return fmt.Errorf("source %s: %v", path, err)
		}
		if p == "/" {
			return nil
		}
	}
}

// save writes a build's record.
func (b *Builder) save(rec *Build) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(b.recordPath(rec.ID), append(data, '\n'), 0o644)
}

// setState moves a build to a new state, records it, and wakes watchers.
func (b *Builder) setState(e *entry, state string, mutate func(*Build)) {
	now := time.Now().UTC()
	rec := b.commit(e, func(r *Build) {
		r.State = state
		r.Phases = append(r.Phases, Phase{State: state, At: now})
		if mutate != nil {
			mutate(r)
		}
		if Final(state) {
			r.Finished = now
		}
	})
	e.log.phase()
	if Final(rec.State) {
		e.own.Release()
	}
}

// update changes a build's record without a change of state.
func (b *Builder) update(e *entry, mutate func(*Build)) { b.commit(e, mutate) }

// commit applies a change to a build's record: on disk first, then for
// the API and watchers, so that nobody is told of a state that a restart
// would not find. Changes to one build are applied one at a time.
func (b *Builder) commit(e *entry, mutate func(*Build)) Build {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	b.mu.Lock()
	rec := e.b
	b.mu.Unlock()
	rec.Phases = append([]Phase(nil), rec.Phases...)
	mutate(&rec)
	if err := b.save(&rec); err != nil {
		b.log.Error("save build record", "build", rec.ID, "err", err)
	}
	// The metrics count a build the moment it is final, before anyone
	// can see it so.
	if Final(rec.State) && !Final(e.b.State) {
		b.observe(rec)
	}
	b.mu.Lock()
	e.b = rec
	b.notifyLocked()
	b.mu.Unlock()
	return rec
}

func (b *Builder) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change of any build.
func (b *Builder) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// List returns every build, newest first.
func (b *Builder) List() []Build {
	b.mu.Lock()
	out := make([]Build, 0, len(b.builds))
	for _, e := range b.builds {
		out = append(out, e.b)
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Submitted.Equal(out[j].Submitted) {
			return out[i].Submitted.After(out[j].Submitted)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Get returns one build.
func (b *Builder) Get(id string) (Build, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.builds[id]
	if !ok {
		return Build{}, fmt.Errorf("%w: %s", ErrNoBuild, id)
	}
	return e.b, nil
}

// Cancel stops a queued or running build; caller is the uid asking (root
// or the build's owner may cancel).
func (b *Builder) Cancel(id string, caller int) error {
	b.mu.Lock()
	e, ok := b.builds[id]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoBuild, id)
	}
	if caller != 0 && caller != e.b.Owner {
		b.mu.Unlock()
		return fmt.Errorf("%w: build %s belongs to uid %d", ErrForbidden, id, e.b.Owner)
	}
	if Final(e.b.State) {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s is %s", ErrFinished, id, e.b.State)
	}
	if e.b.State == StateQueued {
		q := b.queues[e.b.Request.Config]
		for i, x := range q {
			if x == e {
				b.queues[e.b.Request.Config] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		b.setState(e, StateCancelled, func(r *Build) { r.Error = errCancelled.Error() })
		e.log.close()
		return nil
	}
	cancel := e.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
	return nil
}

// Log returns a build's log for reading and following.
func (b *Builder) Log(id string) (*logStream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.builds[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoBuild, id)
	}
	return e.log, nil
}

// LogPath is where a build's log file is.
func (b *Builder) LogPath(id string) string { return b.logPath(id) }

// WaitFor blocks until a build is final (or ctx ends) and returns it.
func (b *Builder) WaitFor(ctx context.Context, id string) (Build, error) {
	for {
		ch := b.Changed()
		rec, err := b.Get(id)
		if err != nil || Final(rec.State) {
			return rec, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return rec, ctx.Err()
		}
	}
}

// dispatch starts queued builds, at most Jobs at a time, taking configs in
// turn so one config's long queue does not starve the others.
func (b *Builder) dispatch(ctx context.Context) {
	for {
		for {
			b.mu.Lock()
			if b.running >= b.opts.Jobs {
				b.mu.Unlock()
				break
			}
			e := b.nextLocked()
			if e == nil {
				b.mu.Unlock()
				break
			}
			b.running++
			bctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
			e.cancel = cancel
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.run(bctx, e)
				cancel(nil)
				b.mu.Lock()
				b.running--
				b.mu.Unlock()
				select {
				case b.wake <- struct{}{}:
				default:
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
	}
}

// nextLocked pops the next build in round-robin order over configs.
func (b *Builder) nextLocked() *entry {
	for i := 0; i < len(b.rr); i++ {
		root := b.rr[0]
		b.rr = append(b.rr[1:], root)
		if q := b.queues[root]; len(q) > 0 {
			b.queues[root] = q[1:]
			return q[0]
		}
	}
	return nil
}
