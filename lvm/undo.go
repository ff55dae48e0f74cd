package lvm

import (
	"context"
	"errors"
	"fmt"

	"github.com/thinroot/thinroot/lvm/journal"
)

// undo takes a journaled operation to the end its type says
// (journal.Op.Forward): a creation back to where it began (what it made
// and mounted goes, the records it changed get their old content), a
// removal to its end (what it removes goes, the records get their new
// content, and a scrub's pool goes once nothing is left in it).
//
// It is the one way back. An operation whose step fails runs it at once
// (op.finish); recovery runs it for an operation whose process died. It
// is idempotent: it may run again on what a first run left.
func (m *Manager) undo(ctx context.Context, in *journal.Intent) error {
	be, err := m.backend(in.Backend)
	if err != nil {
		return err
	}
	forward := in.Op.Forward()
	for _, dir := range in.Frozen {
		m.mounter.Thaw(dir)
	}
	var errs []error
	for _, mp := range in.Mounts {
		if err := m.mounter.Unmount(mp, true); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(in.Volumes) - 1; i >= 0; i-- {
		if err := be.Remove(ctx, in.Pool, in.Volumes[i]); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	for i := len(in.Records) - 1; i >= 0; i-- {
		if err := in.Records[i].Set(forward); err != nil {
			errs = append(errs, fmt.Errorf("record %s: %w", in.Records[i].Path, err))
		}
	}
	for _, mp := range in.Mounts {
		removeMountDirs(mp)
	}
	if forward && in.Op.RemovesPool() && len(errs) == 0 {
		if _, err := m.removeEmptyPool(ctx, be, in.Pool); err != nil {
			errs = append(errs, err)
		}
	}
	// Every volume an intent names is gone now, whichever way it went;
	// the cached report must not offer them to the next operation.
	m.patch(in.Pool, nil, in.Volumes...)
	m.markDirty()
	return errors.Join(errs...)
}
