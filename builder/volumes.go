package builder

import (
	"context"
	"io"

	"github.com/thinroot/thinroot/lvm"
)

// Volumes is what the builder needs of the volume model: the picture, the
// config's paths, init, and a workdir per build, held while it runs.
// *lvm.Manager is the one the daemon gives it; the builder depends on
// this interface, not on the Manager's type.
type Volumes interface {
	// State returns the last published picture, without blocking on a
	// backend.
	State() *lvm.State
	// Config returns a config (its paths: the result directory lives
	// beside the workdir's root).
	Config(root string) (*lvm.Config, error)
	// InitWatch bootstraps a config once, telling watch when it waits for
	// another process's init and when it bootstraps itself.
	InitWatch(ctx context.Context, root string, out io.Writer, watch func(phase string)) (bool, error)
	// Hold and Unhold mark a workdir as used by a build.
	Hold(root, ext, who string) error
	Unhold(root, ext string)
	CreateWorkdir(ctx context.Context, root, snap, ext string) (*lvm.WorkdirState, error)
	RemoveWorkdir(ctx context.Context, root, ext string) error
	// Refresh rescans the pools (a build that waited on another process's
	// bootstrap looks again); Current names an ext's current snapshot.
	Refresh(ctx context.Context) (*lvm.State, error)
	Current(root, ext string) (string, error)
	// Snapshot and RemoveSnapshot make and drop builddep snapshots.
	Snapshot(ctx context.Context, root, ext, name string) error
	RemoveSnapshot(ctx context.Context, root, snap string) error
}

var _ Volumes = (*lvm.Manager)(nil)
