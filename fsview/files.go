package fsview

import (
	"context"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/thinroot/thinroot/lvm"
)

// contenter is a regular file node: its content in a State, its
// modification time, and whether it exists.
type contenter interface {
	node
	content(st *lvm.State) ([]byte, time.Time, bool)
}

// actor is a file that does something when a name is written to it.
type actor interface {
	contenter
	act(ctx context.Context, name string) syscall.Errno
}

// file is embedded by every regular file node. Content is rendered at
// open and served with direct I/O, so every cat sees it fresh and never a
// size cached from an earlier read.
type file struct{ base }

func (f *file) contenter() contenter { return f.self.(contenter) }

func (f *file) fillFile(st *lvm.State, a *fuse.Attr) {
	if data, mtime, ok := f.contenter().content(st); ok {
		a.Size = uint64(len(data))
		setTimes(a, mtime)
	}
}

var _ fs.NodeOpener = (*file)(nil)

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	data, _, ok := f.contenter().content(f.t.state())
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	h := &handle{f: f, data: data}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		a, ok := f.self.(actor)
		if !ok {
			return nil, 0, syscall.EROFS
		}
		h.act = a
	}
	if l, ok := f.self.(interface{ live() bool }); ok {
		h.live = l.live()
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// maxAction bounds what an action file accepts: one name and a newline.
const maxAction = 256

// handle is an open file: the content as rendered at open, and for an
// action file opened for writing, the action.
type handle struct {
	f    *file
	data []byte
	act  actor
	// live re-renders at each read (a build log that grows while read).
	live bool
}

var (
	_ fs.FileReader = (*handle)(nil)
	_ fs.FileWriter = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data := h.data
	if h.live {
		if d, _, ok := h.f.contenter().content(h.f.t.state()); ok {
			data = d
		}
	}
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(data)))
	return fuse.ReadResultData(data[off:end]), 0
}

// Write takes exactly one name and an optional newline in one write at
// offset 0 and acts on it; the errno is the action's.
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.act == nil {
		return 0, syscall.EBADF
	}
	name, errno := parseName(data, off)
	if errno != 0 {
		return 0, errno
	}
	if errno := h.act.act(ctx, name); errno != 0 {
		return 0, errno
	}
	return uint32(len(data)), 0
}

// parseName accepts "NAME" or "NAME\n" written at offset 0. The name's
// own rules are the model's (EINVAL from there too).
func parseName(data []byte, off int64) (string, syscall.Errno) {
	if off != 0 || len(data) == 0 || len(data) > maxAction {
		return "", syscall.EINVAL
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" || strings.ContainsAny(s, " \t\r\n\x00/") {
		return "", syscall.EINVAL
	}
	return s, 0
}

// action is embedded by action files: it allows the truncation that a
// shell's ">" asks for (and time changes, which touch asks for), nothing
// else.
type action struct{ file }

func (a *action) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0 {
		return syscall.EPERM
	}
	if sz, ok := in.GetSize(); ok && sz != 0 {
		return syscall.EINVAL
	}
	a.t.attr(a.self, a.t.state(), &out.Attr)
	return 0
}

// Files.

// readmeFile is the short guide at the root.
type readmeFile struct{ file }

func (*readmeFile) kind() string                       { return "readme" }
func (*readmeFile) mode() uint32                       { return modeFile }
func (f *readmeFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *readmeFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	return []byte(readme), f.t.started, true
}

// statsFile is a pool's stats or stats.json.
type statsFile struct {
	file
	pool string
	json bool
}

func (*statsFile) kind() string                       { return "stats" }
func (*statsFile) mode() uint32                       { return modeFile }
func (f *statsFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *statsFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	p := st.Pool(f.pool)
	if p == nil {
		return nil, time.Time{}, false
	}
	stats := PoolStats(p.Stats)
	if f.json {
		return StatsJSON(stats), stats.Updated, true
	}
	return []byte(StatsText(stats)), stats.Updated, true
}

// stateFile is a config's init state.
type stateFile struct {
	file
	pool, root string
}

func (*stateFile) kind() string                       { return "state" }
func (*stateFile) mode() uint32                       { return modeFile }
func (f *stateFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *stateFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	cs := findConfig(st, f.pool, f.root)
	if cs == nil {
		return nil, time.Time{}, false
	}
	return renderState(cs, f.t.lastError(f.root)), st.Taken, true
}

// currentFile is a config's default snapshot; writing a name switches it.
type currentFile struct {
	action
	pool, root string
}

func (*currentFile) kind() string                       { return "current" }
func (*currentFile) mode() uint32                       { return modeAction }
func (f *currentFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *currentFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	cs := findConfig(st, f.pool, f.root)
	if cs == nil {
		return nil, time.Time{}, false
	}
	if cs.Current == "" {
		return nil, st.Taken, true
	}
	return []byte(cs.Current + "\n"), st.Taken, true
}

// act records name as the current snapshot of the default unique-ext, as
// mock --rollback-to does, but leaves every workdir alone.
func (f *currentFile) act(ctx context.Context, name string) syscall.Errno {
	return f.t.op(ctx, "set current", f.root, []any{"snapshot", name}, func(ctx context.Context) error {
		return f.t.m.SetCurrent(ctx, f.root, lvm.DefaultExt, name)
	})
}

// snapInfoFile is a snapshot's .info or .info.json.
type snapInfoFile struct {
	file
	pool, root, snap string
	json             bool
}

func (*snapInfoFile) kind() string                       { return "snapshot-info" }
func (*snapInfoFile) mode() uint32                       { return modeFile }
func (f *snapInfoFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *snapInfoFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	_, s := findSnapshot(st, f.pool, f.root, f.snap)
	if s == nil {
		return nil, time.Time{}, false
	}
	info := NewSnapshotInfo(f.root, s)
	if f.json {
		return jsonFile(info), s.Created, true
	}
	return info.Text(), s.Created, true
}

// workdirInfoFile is a workdir's .info or .info.json.
type workdirInfoFile struct {
	file
	pool, root, snap, ext string
	json                  bool
}

func (*workdirInfoFile) kind() string                       { return "workdir-info" }
func (*workdirInfoFile) mode() uint32                       { return modeFile }
func (f *workdirInfoFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *workdirInfoFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	w := findWorkdir(st, f.pool, f.root, f.snap, f.ext)
	if w == nil {
		return nil, time.Time{}, false
	}
	info := NewWorkdirInfo(w)
	if f.json {
		return jsonFile(info), w.Created, true
	}
	return info.Text(), w.Created, true
}

// snapshotFile snapshots its workdir as the name written to it. It reads
// empty.
type snapshotFile struct {
	action
	pool, root, snap, ext string
}

func (*snapshotFile) kind() string                       { return "snapshot-action" }
func (*snapshotFile) mode() uint32                       { return modeAction }
func (f *snapshotFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *snapshotFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	w := findWorkdir(st, f.pool, f.root, f.snap, f.ext)
	if w == nil {
		return nil, time.Time{}, false
	}
	return nil, w.Created, true
}

func (f *snapshotFile) act(ctx context.Context, name string) syscall.Errno {
	return f.t.op(ctx, "snapshot", f.root, []any{"ext", f.ext, "snapshot", name}, func(ctx context.Context) error {
		return f.t.m.Snapshot(ctx, f.root, f.ext, name)
	})
}

// buildFile is a build's status, log or spec.
type buildFile struct {
	file
	id, which string
}

func (*buildFile) kind() string                       { return "build-file" }
func (*buildFile) mode() uint32                       { return modeFile }
func (f *buildFile) fill(st *lvm.State, a *fuse.Attr) { f.fillFile(st, a) }
func (f *buildFile) live() bool                       { return f.which == "log" }
func (f *buildFile) content(st *lvm.State) ([]byte, time.Time, bool) {
	b := f.t.opts.Builds
	if b == nil {
		return nil, time.Time{}, false
	}
	data, err := b.BuildFile(f.id, f.which)
	if err != nil {
		return nil, time.Time{}, false
	}
	return data, time.Now(), true
}

// buildLogFile is a build's log served from its file: each read goes to
// the file at the asked offset and the size is the file's, so readers see
// the log grow (tail -f) at no cost per read beyond the bytes read.
type buildLogFile struct {
	base
	id   string
	logs BuildLogs
}

var _ fs.NodeOpener = (*buildLogFile)(nil)

func (*buildLogFile) kind() string { return "build-log" }
func (*buildLogFile) mode() uint32 { return modeFile }
func (f *buildLogFile) fill(st *lvm.State, a *fuse.Attr) {
	if fi, err := os.Stat(f.logs.BuildLogPath(f.id)); err == nil {
		a.Size = uint64(fi.Size())
		setTimes(a, fi.ModTime())
	}
}

func (f *buildLogFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	path := f.logs.BuildLogPath(f.id)
	if path == "" {
		return nil, 0, syscall.ENOENT
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, syscall.ENOENT
	}
	return &logHandle{f: fh}, fuse.FOPEN_DIRECT_IO, 0
}

// logHandle reads an open log file.
type logHandle struct{ f *os.File }

var (
	_ fs.FileReader   = (*logHandle)(nil)
	_ fs.FileReleaser = (*logHandle)(nil)
)

func (h *logHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *logHandle) Release(ctx context.Context) syscall.Errno {
	h.f.Close()
	return 0
}

// Symlinks.

// targeter is a symlink node: its target in a State.
type targeter interface {
	node
	target(st *lvm.State) (string, bool)
}

// symlink is embedded by every symlink node.
type symlink struct{ base }

var _ fs.NodeReadlinker = (*symlink)(nil)

func (l *symlink) mode() uint32 { return modeSymlink }

func (l *symlink) fill(st *lvm.State, a *fuse.Attr) {
	if tg, ok := l.self.(targeter).target(st); ok {
		a.Size = uint64(len(tg))
	}
}

func (l *symlink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	tg, ok := l.self.(targeter).target(l.t.state())
	if !ok {
		return nil, syscall.ENOENT
	}
	return []byte(tg), 0
}

// rootLink is a workdir's root: its real mount path, so a chroot works on
// the real filesystem and not through this tree.
type rootLink struct {
	symlink
	pool, root, snap, ext string
}

func (*rootLink) kind() string { return "root-link" }
func (l *rootLink) target(st *lvm.State) (string, bool) {
	if w := findWorkdir(st, l.pool, l.root, l.snap, l.ext); w != nil {
		return w.Mountpoint, true
	}
	return "", false
}

// workdirLink is workdirs/<config>.<ext>, to the same real path.
type workdirLink struct {
	symlink
	pool, root, ext string
}

func (*workdirLink) kind() string { return "workdir-link" }
func (l *workdirLink) target(st *lvm.State) (string, bool) {
	if cs := findConfig(st, l.pool, l.root); cs != nil {
		if w := cs.Workdir(l.ext); w != nil {
			return w.Mountpoint, true
		}
	}
	return "", false
}

// configLink is configs/<config>, to the config's directory in its pool.
type configLink struct {
	symlink
	pool, root string
}

func (*configLink) kind() string { return "config-link" }
func (l *configLink) target(st *lvm.State) (string, bool) {
	return "../pools/" + l.pool + "/configs/" + l.root, true
}

// resultLink is a build's result directory.
type resultLink struct {
	symlink
	id string
}

func (*resultLink) kind() string { return "result-link" }
func (l *resultLink) target(st *lvm.State) (string, bool) {
	if b := l.t.opts.Builds; b != nil {
		if r := b.BuildResult(l.id); r != "" {
			return r, true
		}
	}
	return "", false
}

func sortNodes(ns []node) {
	sort.Slice(ns, func(i, j int) bool { return ns[i].b().name < ns[j].b().name })
}
