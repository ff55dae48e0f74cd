package fsview

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/thinroot/thinroot/lvm"
)

// view is the flat picture of the tree the invalidator compares: every
// path with its kind, and for files and symlinks their content (what a
// change of it must drop from the kernel's caches).
type view map[string]viewEntry

type viewEntry struct {
	kind    string
	content string
}

// flatten walks the tree's own listings over st, so the invalidator sees
// exactly what lookups would. Build directories are listed but their
// files' content is not compared (the log streams on its own).
func (t *Tree) flatten(st *lvm.State) view {
	v := view{}
	var walk func(n node)
	walk = func(n node) {
		e := viewEntry{kind: n.kind()}
		switch c := n.(type) {
		case lister:
			kids, _ := c.list(st)
			for _, k := range kids {
				walk(k)
			}
		case *buildFile:
		case contenter:
			data, _, _ := c.content(st)
			e.content = string(data)
		case targeter:
			e.content, _ = c.target(st)
		}
		v[n.b().path] = e
	}
	walk(t.root)
	return v
}

// invalidator runs alone and holds no lock: it waits for a new State (or
// the interval, for what the State does not carry: registered configs and
// builds), compares it with the previous one, and tells the kernel what
// changed. Notifications may wait for the kernel to finish a request on
// the same directory; nothing a request waits for depends on them.
func (t *Tree) invalidator(ctx context.Context) {
	tick := time.NewTicker(t.opts.Refresh)
	defer tick.Stop()
	var prev view
	for {
		changed := t.m.Changed()
		prev = t.invalidate(prev)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// invalidate takes the current view and tells the kernel how it differs
// from prev; it returns the view to compare with next time. A panic is
// logged and the pass skipped: freshness must outlive a bad State.
func (t *Tree) invalidate(prev view) (cur view) {
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("panic in the invalidator; going on", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			cur = prev
		}
	}()
	cur = t.flatten(t.state())
	if prev != nil {
		t.notify(prev, cur)
	}
	return cur
}

// notify tells the kernel about the differences between two views: a
// gone entry is deleted from its parent, an entry whose kind or symlink
// target changed is dropped, and a file whose content changed has its
// cached pages and attributes dropped. New entries need nothing: lookups
// that failed are not cached.
func (t *Tree) notify(prev, cur view) {
	var gone, changed []string
	for p, e := range prev {
		c, ok := cur[p]
		switch {
		case !ok:
			gone = append(gone, p)
		case c.kind != e.kind:
			gone = append(gone, p)
		case c.content != e.content:
			changed = append(changed, p)
		}
	}
	// Deepest first, so children go before their parents.
	sort.Slice(gone, func(i, j int) bool { return strings.Count(gone[i], "/") > strings.Count(gone[j], "/") })
	for _, p := range gone {
		parent, name := t.split(p)
		if parent == nil {
			continue // the kernel never looked its parent up: nothing cached
		}
		if child := parent.GetChild(name); child != nil {
			if errno := parent.NotifyDelete(name, child); errno != 0 {
				parent.NotifyEntry(name)
			}
		} else {
			parent.NotifyEntry(name)
		}
		t.log.Debug("invalidated", "path", p, "why", "gone")
	}
	for _, p := range changed {
		parent, name := t.split(p)
		if parent == nil {
			continue
		}
		child := parent.GetChild(name)
		if child == nil {
			continue
		}
		if child.Mode()&syscall.S_IFMT == syscall.S_IFLNK {
			// A symlink's target is part of its entry.
			parent.NotifyEntry(name)
		} else {
			child.NotifyContent(0, 0)
		}
	}
}

// split finds the inode of p's parent among the inodes the kernel knows,
// and p's last element. It returns nil when the parent is not known.
func (t *Tree) split(p string) (*fs.Inode, string) {
	n := t.root.EmbeddedInode()
	parts := strings.Split(p, "/")
	for _, part := range parts[:len(parts)-1] {
		if n = n.GetChild(part); n == nil {
			return nil, ""
		}
	}
	return n, parts[len(parts)-1]
}
