// Package fsview is the FUSE tree of thinroot (DESIGN "The tree"): pools,
// configs, snapshots and workdirs shown as directories and files, driven
// with ls, cat, mkdir, rmdir, echo and chroot.
//
// It holds nodes only. Everything it shows comes from the immutable
// lvm.State a Model publishes, and everything it changes goes through the
// Model's operations; it never runs lvm2, mounts anything or touches the
// volumes. Mounting the tree is the caller's business (thinroot mount).
package fsview

import (
	"context"

	"github.com/thinroot/thinroot/lvm"
)

// Model is what the tree needs of the volume model; *lvm.Manager
// satisfies it. Reads (State, Changed, Configs) must never block on a
// backend: the tree answers kernel requests from them.
type Model interface {
	// State returns the last published picture.
	State() *lvm.State
	// Changed returns a channel closed at the next publication.
	Changed() <-chan struct{}
	// Refresh rescans the pools and publishes a new State.
	Refresh(ctx context.Context) (*lvm.State, error)
	// Configs returns the registered configs (those with a config file).
	Configs() []lvm.Config

	CreateWorkdir(ctx context.Context, root, snap, ext string) (*lvm.WorkdirState, error)
	RemoveWorkdir(ctx context.Context, root, ext string) error
	Snapshot(ctx context.Context, root, ext, name string) error
	SetCurrent(ctx context.Context, root, ext, snap string) error
	RemoveSnapshot(ctx context.Context, root, snap string) error
}

var _ Model = (*lvm.Manager)(nil)

// Builds feeds builds/: one directory per build with status, log, spec
// and a result symlink. The builder implements it; without one builds/
// stays empty. Like Model, it must answer from memory without blocking.
type Builds interface {
	// BuildIDs lists the builds to show, sorted.
	BuildIDs() []string
	// BuildFile returns the current content of a build's "status", "log"
	// or "spec"; an error wrapping lvm.ErrNotFound when there is no such
	// build.
	BuildFile(id, name string) ([]byte, error)
	// BuildResult is the real path of a build's result directory, "" when
	// it has none (yet).
	BuildResult(id string) string
}

// BuildLogs is implemented by a Builds whose logs are files: the tree then
// reads a log straight from its file at each read, and its size from
// stat, so `tail -f` sees it grow without the whole log being copied per
// read.
type BuildLogs interface {
	// BuildLogPath is the log file of a build, "" when there is none.
	BuildLogPath(id string) string
}

// BuildFiles are the regular files of a build directory.
var BuildFiles = []string{"log", "spec", "status"}
