package lvm

import "github.com/thinroot/thinroot/internal/lock"

// The lock primitive lives in internal/lock. The builder still takes it
// from here; these names stay until it imports internal/lock itself (kept
// out of this change so that the builder's files, which other work is
// changing, are not touched for it).

// HeldLock is lock.Held.
type HeldLock = lock.Held

// TryLock is lock.TryLock.
func TryLock(path string, exclusive bool) (*HeldLock, error) { return lock.TryLock(path, exclusive) }
