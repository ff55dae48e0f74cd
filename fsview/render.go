package fsview

import (
	"fmt"
	"strings"
	"time"

	"github.com/thinroot/thinroot/lvm"
)

// The files are "key: value" lines like the pools' stats, so that grep,
// awk and a reader all work on them; times are RFC 3339 in UTC, sizes in
// bytes, "-" stands for nothing.

func kv(b *strings.Builder, k string, v any) { fmt.Fprintf(b, "%s: %v\n", k, v) }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// renderState is a config's state file: one line as the contract spells
// it ("ready", "initializing (since ..., pid N)", "failed: reason"), then
// the last unexpected failure of an operation through the tree, if any.
func renderState(cs *lvm.ConfigState, lastErr string) []byte {
	var b strings.Builder
	switch {
	case cs.State == lvm.StateFailed:
		fmt.Fprintf(&b, "%s: %s\n", cs.State, oneLine(cs.StateDetail))
	case cs.StateDetail != "":
		fmt.Fprintf(&b, "%s (%s)\n", cs.State, oneLine(cs.StateDetail))
	default:
		fmt.Fprintf(&b, "%s\n", cs.State)
	}
	if lastErr != "" {
		kv(&b, "last_error", oneLine(lastErr))
	}
	return []byte(b.String())
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

const readme = `thinroot: thin-provisioned buildroots, the mock LVM way

  README                                  this guide
  pools/<pool>/stats, stats.json          the pool's figures ("key: value" lines; JSON)
  pools/<pool>/configs/<config>/
      current                             the default snapshot; echo NAME > current to switch
      state                               uninitialized | initializing (...) | ready | failed: reason
      snapshots/<snap>/.info              a snapshot: origin, created, sizes, workdirs
      snapshots/<snap>/.info.json         the same as one JSON object
      snapshots/<snap>/<ext>/             a workdir cloned from <snap>
          .info, .info.json               state, snapshot, created, mountpoint, device, usage
          root -> /var/lib/mock/...       its mounted root (the real path)
          snapshot                        echo NAME > snapshot: snapshot this workdir as NAME
  configs/<config> -> ../pools/<pool>/configs/<config>
  workdirs/<config>.<ext> -> the workdir's mounted root (chroot here)
  builds/<id>/                            one per build

Make a workdir, use it, snapshot it, drop it:

  cd pools/<pool>/configs/<config>/snapshots
  mkdir postinit/try1                     clone postinit, mount it; returns when usable
  chroot ../../../../../workdirs/<config>.try1 /bin/sh
  echo patched > postinit/try1/snapshot   keep its state as snapshot "patched"
  mkdir patched/try2                      a workdir from it
  rmdir postinit/try1 patched/try2        unmount and remove them
  rmdir patched                           remove the snapshot

Errors: EEXIST the unique-ext exists in the config (under any snapshot);
EINVAL a bad name; ENOSPC the pool is over its refuse threshold; EBUSY a
build or a process uses the workdir; ENOTEMPTY the snapshot has workdirs;
EPERM postinit cannot be removed, or the tree has no such action; EACCES
you are not in the tree's group; EIO the backend failed (see the config's
state file and the daemon's log). man 5 thinroot-tree has the details.
`
