package fsview

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/thinroot/thinroot/lvm"
)

// lister is what a directory node adds to node: its children in the
// given State, in listing order (sorted), and whether it exists at all.
type lister interface {
	node
	list(st *lvm.State) ([]node, bool)
}

// dir is embedded by every directory node: lookups and listings come from
// the node's list, so both always agree with the same State.
type dir struct{ base }

var (
	_ fs.NodeLookuper  = (*dir)(nil)
	_ fs.NodeReaddirer = (*dir)(nil)
)

func (d *dir) lister() lister { return d.self.(lister) }

func (d *dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	st := d.t.state()
	kids, _ := d.lister().list(st)
	for _, c := range kids {
		if c.b().name == name {
			d.t.setEntry(c, st, out)
			return d.newChild(ctx, c), 0
		}
	}
	return nil, syscall.ENOENT
}

func (d *dir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	kids, ok := d.lister().list(d.t.state())
	if !ok {
		return nil, syscall.ENOENT
	}
	ents := make([]fuse.DirEntry, 0, len(kids))
	for _, c := range kids {
		ents = append(ents, fuse.DirEntry{Name: c.b().name, Mode: c.mode(), Ino: ino(c.kind(), c.b().path)})
	}
	return fs.NewListDirStream(ents), 0
}

// mk gives a new node its identity.
func mk[N node](t *Tree, n N, parent, name string) N {
	p := name
	if parent != "" {
		p = parent + "/" + name
	}
	n.b().init(t, n, p)
	return n
}

// Modes: the tree is root's and the group's; only the directories where
// mkdir and rmdir mean something, and the action files, are writable, and
// only by the group.
const (
	modeDir      = syscall.S_IFDIR | 0o555
	modeDirW     = syscall.S_IFDIR | 0o775
	modeFile     = syscall.S_IFREG | 0o444
	modeAction   = syscall.S_IFREG | 0o664
	modeSymlink  = syscall.S_IFLNK | 0o777
	kindRoot     = "root"
	kindPools    = "pools"
	kindPool     = "pool"
	kindConfigs  = "pool-configs"
	kindConfig   = "config"
	kindSnaps    = "snapshots"
	kindSnap     = "snapshot"
	kindWorkdir  = "workdir"
	kindWorkdirs = "workdirs"
	kindLinks    = "config-links"
	kindBuilds   = "builds"
	kindBuild    = "build"
)

// rootDir is the mount's root: README, builds/, configs/, pools/, workdirs/.
type rootDir struct{ dir }

func (*rootDir) kind() string                     { return kindRoot }
func (*rootDir) mode() uint32                     { return modeDir }
func (*rootDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *rootDir) list(st *lvm.State) ([]node, bool) {
	t, p := d.t, d.path
	return []node{
		mk(t, &readmeFile{}, p, "README"),
		mk(t, &buildsDir{}, p, "builds"),
		mk(t, &linksDir{}, p, "configs"),
		mk(t, &poolsDir{}, p, "pools"),
		mk(t, &workdirsDir{}, p, "workdirs"),
	}, true
}

// poolsDir lists the pools.
type poolsDir struct{ dir }

func (*poolsDir) kind() string                     { return kindPools }
func (*poolsDir) mode() uint32                     { return modeDir }
func (*poolsDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *poolsDir) list(st *lvm.State) ([]node, bool) {
	out := make([]node, 0, len(st.Pools))
	for _, p := range st.Pools {
		out = append(out, mk(d.t, &poolDir{pool: p.Name}, d.path, p.Name))
	}
	return out, true
}

// poolDir is one pool: its stats files and its configs.
type poolDir struct {
	dir
	pool string
}

func (*poolDir) kind() string                     { return kindPool }
func (*poolDir) mode() uint32                     { return modeDir }
func (*poolDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *poolDir) list(st *lvm.State) ([]node, bool) {
	if st.Pool(d.pool) == nil {
		return nil, false
	}
	return []node{
		mk(d.t, &poolConfigsDir{pool: d.pool}, d.path, "configs"),
		mk(d.t, &statsFile{pool: d.pool}, d.path, "stats"),
		mk(d.t, &statsFile{pool: d.pool, json: true}, d.path, "stats.json"),
	}, true
}

// poolConfigsDir lists the configs with volumes (or a config file) in a pool.
type poolConfigsDir struct {
	dir
	pool string
}

func (*poolConfigsDir) kind() string                     { return kindConfigs }
func (*poolConfigsDir) mode() uint32                     { return modeDir }
func (*poolConfigsDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *poolConfigsDir) list(st *lvm.State) ([]node, bool) {
	p := st.Pool(d.pool)
	if p == nil {
		return nil, false
	}
	out := make([]node, 0, len(p.Configs))
	for _, c := range p.Configs {
		out = append(out, mk(d.t, &configDir{pool: d.pool, root: c.Root}, d.path, c.Root))
	}
	return out, true
}

// configDir is one config: current, snapshots/, state.
type configDir struct {
	dir
	pool, root string
}

func (*configDir) kind() string                     { return kindConfig }
func (*configDir) mode() uint32                     { return modeDir }
func (*configDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *configDir) list(st *lvm.State) ([]node, bool) {
	if findConfig(st, d.pool, d.root) == nil {
		return nil, false
	}
	return []node{
		mk(d.t, &currentFile{pool: d.pool, root: d.root}, d.path, "current"),
		mk(d.t, &snapshotsDir{pool: d.pool, root: d.root}, d.path, "snapshots"),
		mk(d.t, &stateFile{pool: d.pool, root: d.root}, d.path, "state"),
	}, true
}

// snapshotsDir lists a config's snapshots; rmdir of one removes it.
type snapshotsDir struct {
	dir
	pool, root string
}

func (*snapshotsDir) kind() string                     { return kindSnaps }
func (*snapshotsDir) mode() uint32                     { return modeDirW }
func (*snapshotsDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *snapshotsDir) list(st *lvm.State) ([]node, bool) {
	cs := findConfig(st, d.pool, d.root)
	if cs == nil {
		return nil, false
	}
	out := make([]node, 0, len(cs.Snapshots))
	for _, s := range cs.Snapshots {
		out = append(out, mk(d.t, &snapshotDir{pool: d.pool, root: d.root, snap: s.Name}, d.path, s.Name))
	}
	return out, true
}

// Rmdir removes a snapshot: EPERM for postinit, ENOTEMPTY while workdirs
// made from it exist.
func (d *snapshotsDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if _, s := findSnapshot(d.t.state(), d.pool, d.root, name); s == nil {
		return syscall.ENOENT
	}
	return d.t.op(ctx, "remove snapshot", d.root, []any{"snapshot", name}, func(ctx context.Context) error {
		return d.t.m.RemoveSnapshot(ctx, d.root, name)
	})
}

// snapshotDir is one snapshot: .info, .info.json and a directory per workdir made
// from it. mkdir makes a workdir, rmdir removes one.
type snapshotDir struct {
	dir
	pool, root, snap string
}

func (*snapshotDir) kind() string { return kindSnap }
func (*snapshotDir) mode() uint32 { return modeDirW }
func (d *snapshotDir) fill(st *lvm.State, a *fuse.Attr) {
	if _, s := findSnapshot(st, d.pool, d.root, d.snap); s != nil {
		setTimes(a, s.Created)
		a.Nlink = uint32(2 + len(s.Workdirs))
	}
}
func (d *snapshotDir) list(st *lvm.State) ([]node, bool) {
	_, s := findSnapshot(st, d.pool, d.root, d.snap)
	if s == nil {
		return nil, false
	}
	out := make([]node, 0, 2+len(s.Workdirs))
	out = append(out, mk(d.t, &snapInfoFile{pool: d.pool, root: d.root, snap: d.snap}, d.path, ".info"),
		mk(d.t, &snapInfoFile{pool: d.pool, root: d.root, snap: d.snap, json: true}, d.path, ".info.json"))
	for _, w := range s.Workdirs {
		out = append(out, d.workdir(w.Ext))
	}
	sortNodes(out) // an ext may start with '+', before ".info"
	return out, true
}

func (d *snapshotDir) workdir(ext string) *workdirDir {
	return mk(d.t, &workdirDir{pool: d.pool, root: d.root, snap: d.snap, ext: ext}, d.path, ext)
}

// Mkdir clones the snapshot into a workdir for unique-ext name and returns
// once it is mounted: EEXIST when the config has that ext under any
// snapshot, EINVAL for a bad name, ENOSPC over the refuse threshold.
func (d *snapshotDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	st := d.t.state()
	cs, s := findSnapshot(st, d.pool, d.root, d.snap)
	if s == nil {
		return nil, syscall.ENOENT
	}
	if cs.Workdir(name) != nil {
		return nil, syscall.EEXIST
	}
	errno := d.t.op(ctx, "create workdir", d.root, []any{"snapshot", d.snap, "ext", name}, func(ctx context.Context) error {
		_, err := d.t.m.CreateWorkdir(ctx, d.root, d.snap, name)
		return err
	})
	if errno != 0 {
		return nil, errno
	}
	c := d.workdir(name)
	d.t.setEntry(c, d.t.state(), out)
	return d.newChild(ctx, c), 0
}

// Rmdir unmounts and removes a workdir: EBUSY while a build holds it or
// something still uses its mount.
func (d *snapshotDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if findWorkdir(d.t.state(), d.pool, d.root, d.snap, name) == nil {
		return syscall.ENOENT
	}
	return d.t.op(ctx, "remove workdir", d.root, []any{"snapshot", d.snap, "ext", name}, func(ctx context.Context) error {
		return d.t.m.RemoveWorkdir(ctx, d.root, name)
	})
}

// workdirDir is one workdir: .info, .info.json, root -> its mounted
// root, snapshot.
type workdirDir struct {
	dir
	pool, root, snap, ext string
}

func (*workdirDir) kind() string { return kindWorkdir }
func (*workdirDir) mode() uint32 { return modeDir }
func (d *workdirDir) fill(st *lvm.State, a *fuse.Attr) {
	if w := findWorkdir(st, d.pool, d.root, d.snap, d.ext); w != nil {
		setTimes(a, w.Created)
	}
}
func (d *workdirDir) list(st *lvm.State) ([]node, bool) {
	if findWorkdir(st, d.pool, d.root, d.snap, d.ext) == nil {
		return nil, false
	}
	return []node{
		mk(d.t, &workdirInfoFile{pool: d.pool, root: d.root, snap: d.snap, ext: d.ext}, d.path, ".info"),
		mk(d.t, &workdirInfoFile{pool: d.pool, root: d.root, snap: d.snap, ext: d.ext, json: true}, d.path, ".info.json"),
		mk(d.t, &rootLink{pool: d.pool, root: d.root, snap: d.snap, ext: d.ext}, d.path, "root"),
		mk(d.t, &snapshotFile{pool: d.pool, root: d.root, snap: d.snap, ext: d.ext}, d.path, "snapshot"),
	}, true
}

// workdirsDir has a symlink <config>.<ext> per workdir, to its real root.
type workdirsDir struct{ dir }

func (*workdirsDir) kind() string                     { return kindWorkdirs }
func (*workdirsDir) mode() uint32                     { return modeDir }
func (*workdirsDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *workdirsDir) list(st *lvm.State) ([]node, bool) {
	var out []node
	seen := map[string]bool{}
	for _, p := range st.Pools {
		for _, c := range p.Configs {
			for _, w := range c.Workdirs {
				name := c.Root + "." + w.Ext
				if seen[name] {
					continue // the same root in two pools: the first pool's wins
				}
				seen[name] = true
				out = append(out, mk(d.t, &workdirLink{pool: p.Name, root: c.Root, ext: w.Ext}, d.path, name))
			}
		}
	}
	sortNodes(out)
	return out, true
}

// linksDir (configs/) has a symlink per registered config into its pool.
type linksDir struct{ dir }

func (*linksDir) kind() string                     { return kindLinks }
func (*linksDir) mode() uint32                     { return modeDir }
func (*linksDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *linksDir) list(st *lvm.State) ([]node, bool) {
	cs := d.t.m.Configs()
	out := make([]node, 0, len(cs))
	for _, c := range cs {
		out = append(out, mk(d.t, &configLink{pool: c.Pool, root: c.Root}, d.path, c.Root))
	}
	return out, true
}

// buildsDir has a directory per build, when a Builds source is set.
type buildsDir struct{ dir }

func (*buildsDir) kind() string                     { return kindBuilds }
func (*buildsDir) mode() uint32                     { return modeDir }
func (*buildsDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *buildsDir) list(st *lvm.State) ([]node, bool) {
	b := d.t.opts.Builds
	if b == nil {
		return nil, true
	}
	ids := b.BuildIDs()
	out := make([]node, 0, len(ids))
	for _, id := range ids {
		out = append(out, mk(d.t, &buildDir{id: id}, d.path, id))
	}
	return out, true
}

// buildDir is one build: log, result, spec, status.
type buildDir struct {
	dir
	id string
}

func (*buildDir) kind() string                     { return kindBuild }
func (*buildDir) mode() uint32                     { return modeDir }
func (*buildDir) fill(st *lvm.State, a *fuse.Attr) {}
func (d *buildDir) list(st *lvm.State) ([]node, bool) {
	b := d.t.opts.Builds
	if b == nil {
		return nil, false
	}
	found := false
	for _, id := range b.BuildIDs() {
		found = found || id == d.id
	}
	if !found {
		return nil, false
	}
	var out []node
	for _, f := range BuildFiles {
		if bl, ok := b.(BuildLogs); ok && f == "log" {
			out = append(out, mk(d.t, &buildLogFile{id: d.id, logs: bl}, d.path, f))
			continue
		}
		out = append(out, mk(d.t, &buildFile{id: d.id, which: f}, d.path, f))
	}
	if b.BuildResult(d.id) != "" {
		out = append(out, mk(d.t, &resultLink{id: d.id}, d.path, "result"))
	}
	sortNodes(out)
	return out, true
}

// Lookups in the State.

func findConfig(st *lvm.State, pool, root string) *lvm.ConfigState {
	p := st.Pool(pool)
	if p == nil {
		return nil
	}
	for i := range p.Configs {
		if p.Configs[i].Root == root {
			return &p.Configs[i]
		}
	}
	return nil
}

func findSnapshot(st *lvm.State, pool, root, snap string) (*lvm.ConfigState, *lvm.SnapshotState) {
	cs := findConfig(st, pool, root)
	if cs == nil {
		return nil, nil
	}
	return cs, cs.Snapshot(snap)
}

// findWorkdir finds a workdir where the tree shows it: under its snapshot.
func findWorkdir(st *lvm.State, pool, root, snap, ext string) *lvm.WorkdirState {
	_, s := findSnapshot(st, pool, root, snap)
	if s == nil {
		return nil
	}
	for i := range s.Workdirs {
		if s.Workdirs[i].Ext == ext {
			return &s.Workdirs[i]
		}
	}
	return nil
}
