package fsview

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/thinroot/thinroot/lvm"
)

// DefaultRefresh is how often the model is rescanned unless told otherwise.
const DefaultRefresh = time.Second

// Options configure a Tree.
type Options struct {
	// Refresh is the interval between rescans of the pools (default 1 s).
	// Changes made outside this process show within two intervals.
	Refresh time.Duration
	// GID owns the tree with root: its members may mkdir, rmdir and write
	// the action files; everyone else reads only.
	GID uint32
	// Builds fills builds/ (optional).
	Builds Builds
	Log    *slog.Logger
}

// Tree is one FUSE tree over a Model. Nodes read the model's current
// State for every request and hold no lock across a model call, so a slow
// operation in one directory never holds up a read elsewhere.
type Tree struct {
	m       Model
	opts    Options
	log     *slog.Logger
	root    *rootDir
	started time.Time
	// kick asks the refresher for a rescan now (after an operation).
	kick chan struct{}

	// lastErr keeps the last unexpected (EIO) failure per config, shown
	// in its state file so a user sees why without the daemon's log.
	errMu   sync.Mutex
	lastErr map[string]string
}

// New makes a tree over m. Call Run to keep it fresh once it is mounted.
func New(m Model, opts Options) *Tree {
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	t := &Tree{m: m, opts: opts, log: opts.Log, started: time.Now(),
		kick: make(chan struct{}, 1), lastErr: map[string]string{}}
	t.root = &rootDir{}
	t.root.init(t, t.root, "")
	return t
}

// Root is the root node, to hand to fs.Mount.
func (t *Tree) Root() fs.InodeEmbedder { return t.root }

// FuseOptions are the go-fuse options the tree is meant to be mounted
// with; the caller adds how to mount (DirectMount, AllowOther).
func (t *Tree) FuseOptions(mo fuse.MountOptions) *fs.Options {
	mo.FsName = "thinroot"
	mo.Name = "thinroot"
	// The kernel checks mode bits against the caller's uid and groups:
	// members of the tree's group may write, others only read.
	mo.Options = append(mo.Options, "default_permissions")
	// Nothing here has extended attributes; saying so spares every ls -l a
	// round trip per file.
	mo.DisableXAttrs = true
	mo.Logger = slog.NewLogLogger(t.log.Handler(), slog.LevelWarn)
	mo.PanicHandler = func(r any) fuse.Status {
		t.log.Error("panic in a tree handler; answering EIO", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		return fuse.EIO
	}
	// Timeouts are set per node (see setEntry): none here means files
	// are never cached by attribute and negative lookups are not cached.
	return &fs.Options{MountOptions: mo, Logger: log.New(slogWriter{t.log}, "", 0)}
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("fuse", "msg", string(p))
	return len(p), nil
}

// Run keeps the tree fresh until ctx is done: it rescans the model every
// interval and right after each operation, and tells the kernel what
// changed between consecutive States. Call it once the tree is mounted.
func (t *Tree) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); t.refresher(ctx) }()
	go func() { defer wg.Done(); t.invalidator(ctx) }()
	wg.Wait()
}

// poke asks for a rescan soon, without waiting for it.
func (t *Tree) poke() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *Tree) refresher(ctx context.Context) {
	tick := time.NewTicker(t.opts.Refresh)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
		}
		_, err := t.m.Refresh(ctx)
		switch msg := errString(err); {
		case msg == lastErr:
		case err != nil:
			t.log.Warn("rescanning the pools", "err", err)
		default:
			t.log.Info("rescanning the pools works again")
		}
		lastErr = errString(err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// op runs one model operation for a request. It detaches the call from
// the request's cancellation (an interrupted mkdir must not stop half
// way), maps the error to an errno, logs it, and asks for a rescan.
func (t *Tree) op(ctx context.Context, what, root string, attrs []any, f func(context.Context) error) syscall.Errno {
	start := time.Now()
	err := f(context.WithoutCancel(ctx))
	t.poke()
	errno := Errno(err)
	attrs = append([]any{"op", what, "config", root, "took", time.Since(start).Round(time.Microsecond)}, attrs...)
	if c, ok := ctx.(*fuse.Context); ok {
		attrs = append(attrs, "uid", c.Uid, "pid", c.Pid)
	}
	switch {
	case err == nil:
		t.setLastErr(root, "")
		t.log.Info("tree operation", attrs...)
	case errno == syscall.EIO:
		t.setLastErr(root, fmt.Sprintf("%s %s: %v", time.Now().UTC().Format(time.RFC3339), what, err))
		t.log.Error("tree operation failed", append(attrs, "err", err)...)
	default:
		t.log.Info("tree operation refused", append(attrs, "errno", errno.Error(), "err", err)...)
	}
	return errno
}

func (t *Tree) setLastErr(root, msg string) {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	if msg == "" {
		delete(t.lastErr, root)
	} else {
		t.lastErr[root] = msg
	}
}

func (t *Tree) lastError(root string) string {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.lastErr[root]
}

// state is the picture every request answers from.
func (t *Tree) state() *lvm.State { return t.m.State() }
