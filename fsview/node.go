package fsview

import (
	"context"
	"hash/fnv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/thinroot/thinroot/lvm"
)

// node is what every kind of node is: an inode with an identity (its kind
// and path in the tree) and attributes read off the current State.
type node interface {
	fs.InodeEmbedder
	b() *base
	// kind names the node type; with the path it makes the inode number.
	kind() string
	// mode is the file type and permission bits.
	mode() uint32
	// fill sets size, times and link count from st.
	fill(st *lvm.State, a *fuse.Attr)
}

// base is embedded by every node. It refuses every change the contract
// does not allow: EPERM for changes to the tree's shape, EROFS for
// writing what is read-only. Node types override only what they permit.
type base struct {
	fs.Inode
	t    *Tree
	self node
	path string // path inside the tree, "" for the root
	name string // last element of path
}

func (n *base) init(t *Tree, self node, path string) {
	n.t, n.self, n.path = t, self, path
	n.name = path
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			n.name = path[i+1:]
			break
		}
	}
}

func (n *base) b() *base { return n }

// ino derives a stable inode number from the node's identity, so an
// object keeps its number across lookups, forgets and refreshes. It stays
// below 2^63, where go-fuse starts its own numbers, and above 1 (the root).
func ino(kind, path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(path))
	v := h.Sum64() &^ (1 << 63)
	if v < 2 {
		v += 2
	}
	return v
}

func stable(n node) fs.StableAttr {
	return fs.StableAttr{Mode: n.mode() & syscall.S_IFMT, Ino: ino(n.kind(), n.b().path)}
}

// attr fills everything the kernel is told about a node.
func (t *Tree) attr(n node, st *lvm.State, a *fuse.Attr) {
	a.Mode = n.mode()
	a.Ino = ino(n.kind(), n.b().path)
	a.Owner = fuse.Owner{Uid: 0, Gid: t.opts.GID}
	a.Nlink = 1
	if a.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		a.Nlink = 2
	}
	a.Blksize = 4096
	setTimes(a, t.started)
	n.fill(st, a)
	a.Blocks = (a.Size + 511) / 512
}

func setTimes(a *fuse.Attr, tm time.Time) {
	if tm.IsZero() {
		return
	}
	s, ns := uint64(tm.Unix()), uint32(tm.Nanosecond())
	a.Atime, a.Mtime, a.Ctime = s, s, s
	a.Atimensec, a.Mtimensec, a.Ctimensec = ns, ns, ns
}

// setEntry fills a lookup answer. Directories and symlinks are cached for
// one refresh interval (the invalidator drops them earlier when they
// change); regular files are never cached by attribute, so a stat always
// shows the size of what a read would return.
func (t *Tree) setEntry(n node, st *lvm.State, out *fuse.EntryOut) {
	t.attr(n, st, &out.Attr)
	out.SetEntryTimeout(t.opts.Refresh)
	if n.mode()&syscall.S_IFMT != syscall.S_IFREG {
		out.SetAttrTimeout(t.opts.Refresh)
	}
}

// newChild returns the inode for child c of n; an inode already known
// under the same identity is reused.
func (n *base) newChild(ctx context.Context, c node) *fs.Inode {
	return n.NewInode(ctx, c, stable(c))
}

var (
	_ fs.NodeGetattrer = (*base)(nil)
	_ fs.NodeSetattrer = (*base)(nil)
	_ fs.NodeOpener    = (*base)(nil)
	_ fs.NodeMkdirer   = (*base)(nil)
	_ fs.NodeRmdirer   = (*base)(nil)
	_ fs.NodeCreater   = (*base)(nil)
	_ fs.NodeMknoder   = (*base)(nil)
	_ fs.NodeUnlinker  = (*base)(nil)
	_ fs.NodeRenamer   = (*base)(nil)
	_ fs.NodeLinker    = (*base)(nil)
	_ fs.NodeSymlinker = (*base)(nil)
	_ fs.NodeStatfser  = (*base)(nil)
)

func (n *base) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.t.attr(n.self, n.t.state(), &out.Attr)
	if n.self.mode()&syscall.S_IFMT != syscall.S_IFREG {
		out.SetTimeout(n.t.opts.Refresh)
	}
	return 0
}

func (n *base) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EPERM
}

// Open refuses everything; file nodes override it.
func (n *base) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.self.mode()&syscall.S_IFMT == syscall.S_IFDIR {
		return nil, 0, syscall.EISDIR
	}
	return nil, 0, syscall.EROFS
}

func (n *base) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *base) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EPERM }

func (n *base) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

func (n *base) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *base) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EPERM }

func (n *base) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EPERM
}

func (n *base) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *base) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// Statfs reports an empty filesystem: the tree holds no data of its own
// (the pools' figures are in their stats files).
func (n *base) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	*out = fuse.StatfsOut{Bsize: 4096, Frsize: 4096, NameLen: 255}
	return 0
}
