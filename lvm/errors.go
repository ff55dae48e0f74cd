package lvm

import (
	"errors"
	"fmt"

	"github.com/thinroot/thinroot/lvm/backend"
)

// Sentinel errors callers branch on (with errors.Is). The tree maps them to
// errno values; the CLI prints them with their context. Those a backend
// also returns are lvm/backend's own values.
var (
	ErrInvalidName = backend.ErrInvalidName
	ErrExists      = backend.ErrExists
	ErrNotFound    = backend.ErrNotFound
	ErrPoolFull    = backend.ErrPoolFull
	ErrBusy        = backend.ErrBusy
	ErrNotEmpty    = backend.ErrNotEmpty
	ErrUnsupported = backend.ErrUnsupported
	ErrNoRoom      = backend.ErrNoRoom
	ErrNotAllowed  = errors.New("not allowed")
	ErrNotReady    = errors.New("not initialized")
)

// PoolFullError says which pool is over which threshold, with its figures,
// so a user knows what to grow.
type PoolFullError struct {
	Pool            string
	DataPercent     float64
	MetadataPercent float64
	RefusePercent   float64
	Reason          string // set when the backend reports the pool out of space
}

func (e *PoolFullError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("thin pool %s is full: %s (data %.1f%%, metadata %.1f%%)", e.Pool, e.Reason, e.DataPercent, e.MetadataPercent)
	}
	return fmt.Sprintf("thin pool %s is over %.0f%% (data %.1f%%, metadata %.1f%%): grow it or remove volumes",
		e.Pool, e.RefusePercent, e.DataPercent, e.MetadataPercent)
}

func (e *PoolFullError) Is(target error) bool { return target == ErrPoolFull }

// notFound and friends wrap a sentinel with the object it is about.
func notFound(what, name string) error { return fmt.Errorf("%s %s: %w", what, name, ErrNotFound) }
func exists(what, name string) error   { return fmt.Errorf("%s %s: %w", what, name, ErrExists) }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
