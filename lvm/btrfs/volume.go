package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/imagepool"
)

// sidecar is <name>.json beside the subvolume <name>.
type sidecar struct {
	Name    string    `json:"name"`
	Origin  string    `json:"origin,omitempty"`
	Created time.Time `json:"created"`
	Tags    []string  `json:"tags,omitempty"`
}

// A volume is published when the subvolume <name> exists; its sidecar is
// written before the temporary .tmp-<name> is renamed into place. The
// writer holds .tmp-<name>.lock while it works; Sweep removes what a
// writer that died left.
func (b *Backend) path(pool, name string) string { return filepath.Join(b.pools.Volumes(pool), name) }
func (b *Backend) sidecarPath(pool, name string) string {
	return filepath.Join(b.pools.Volumes(pool), name+".json")
}
func tmpName(name string) string { return ".tmp-" + name }

// Create implements backend.Backend: an empty subvolume. size is not
// used: a subvolume has no size of its own.
func (b *Backend) Create(ctx context.Context, pool, name string, size int64) (*backend.Volume, error) {
	return b.make(ctx, pool, name, sidecar{Name: name}, func(dir *os.File, tmp string) error {
		return subvolCreate(dir, tmp)
	})
}

// Snapshot implements backend.Backend: a read-only snapshot of origin,
// or with opts.Activate a writable one (a workdir). A snapshot of a
// subvolume holds everything written to it before the call, mounted or
// not: nothing needs freezing.
func (b *Backend) Snapshot(ctx context.Context, pool, origin, name string, opts backend.SnapshotOptions) (*backend.Volume, error) {
	src, err := openDir(b.path(pool, origin))
	if err != nil {
		if _, oerr := b.pools.Open(ctx, pool); oerr != nil {
			return nil, oerr
		}
		return nil, errno("snapshot origin "+origin, err)
	}
	defer src.Close()
	sc := sidecar{Name: name, Origin: origin, Tags: opts.Tags}
	return b.make(ctx, pool, name, sc, func(dir *os.File, tmp string) error {
		return snapshotCreate(dir, src, tmp, !opts.Activate)
	})
}

// make makes a volume under its temporary name with mk, writes its
// sidecar and publishes it.
func (b *Backend) make(ctx context.Context, pool, name string, sc sidecar, mk func(dir *os.File, tmp string) error) (*backend.Volume, error) {
	if _, err := b.pools.Open(ctx, pool); err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("volume name %q: %w", name, backend.ErrInvalidName)
	}
	if _, err := os.Lstat(b.path(pool, name)); err == nil {
		return nil, fmt.Errorf("volume %s: %w", name, backend.ErrExists)
	}
	l, err := b.lockTemp(pool, name)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	dir, err := openDir(b.pools.Volumes(pool))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	tmp := tmpName(name)
	if err := mk(dir, tmp); err != nil {
		return nil, errno("make volume "+name, err)
	}
	sc.Created = time.Now().UTC()
	if err := b.publish(pool, sc); err != nil {
		subvolDestroy(dir, tmp)
		return nil, fmt.Errorf("make volume %s: %w", name, err)
	}
	os.Remove(l.Path())
	return b.volume(pool, name, sc, nil)
}

// lockTemp takes the lock on name's temporary, sweeping one a dead writer
// left. A sweeper can remove the lock file between our create and our
// lock; then we start over rather than hold a lock on an unlinked file.
func (b *Backend) lockTemp(pool, name string) (*lock.Held, error) {
	path := filepath.Join(b.pools.Volumes(pool), tmpName(name)+".lock")
	for attempt := 0; attempt < 8; attempt++ {
		l, err := lock.TryLock(path, true)
		if err != nil {
			return nil, err
		}
		if l == nil {
			return nil, fmt.Errorf("volume %s is being created: %w", name, backend.ErrExists)
		}
		if fi, err := os.Stat(path); err == nil && sameFile(l, fi) {
			// Ours, and nobody's before us: a temporary there is a dead
			// writer's.
			b.destroyTemp(pool, name)
			return l, nil
		}
		l.Release()
	}
	return nil, fmt.Errorf("lock %s: lost it to a concurrent sweep repeatedly", path)
}

func sameFile(l *lock.Held, fi os.FileInfo) bool {
	mine, err := l.File().Stat()
	return err == nil && os.SameFile(mine, fi)
}

// publish writes the sidecar and renames the temporary into place.
func (b *Backend) publish(pool string, sc sidecar) error {
	if err := imagepool.WriteJSON(b.sidecarPath(pool, sc.Name), sc); err != nil {
		return err
	}
	vols := b.pools.Volumes(pool)
	if err := os.Rename(filepath.Join(vols, tmpName(sc.Name)), filepath.Join(vols, sc.Name)); err != nil {
		os.Remove(b.sidecarPath(pool, sc.Name))
		return err
	}
	return fsutil.SyncDir(vols)
}

// volume describes one volume from its own files, without listing the
// pool. used is the qgroup usage by subvolume id (nil: not looked up).
func (b *Backend) volume(pool, name string, sc sidecar, used map[uint64]int64) (*backend.Volume, error) {
	p := b.path(pool, name)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("volume %s: %w", name, backend.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v := &backend.Volume{Name: name, Pool: pool, Origin: sc.Origin, Created: sc.Created, Tags: sc.Tags,
		Thin: true, Active: true, Mount: backend.Mount{Type: backend.Bind, Source: p}}
	if v.Created.IsZero() {
		v.Created = fi.ModTime()
	}
	if used != nil {
		if id, err := subvolID(p); err == nil {
			v.UsedBytes = used[id]
		}
	}
	return v, nil
}

// list reads the volumes directory. Temporaries are not listed.
func (b *Backend) list(pool string) ([]backend.Volume, error) {
	ents, err := os.ReadDir(b.pools.Volumes(pool))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("btrfs pool %s: %w", pool, err)
	}
	used := b.qgroupUsage(pool)
	var vols []backend.Volume
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var sc sidecar
		imagepool.ReadJSON(b.sidecarPath(pool, e.Name()), &sc)
		v, err := b.volume(pool, e.Name(), sc, used)
		if err != nil {
			continue // removed meanwhile
		}
		vols = append(vols, *v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	return vols, nil
}

// qgroupUsage reads what each subvolume refers to from the filesystem's
// qgroups in sysfs, by subvolume id; nil when quotas are off.
func (b *Backend) qgroupUsage(pool string) map[uint64]int64 {
	uuid, err := fsUUID(b.pools.Path(pool))
	if err != nil {
		return nil
	}
	dir := filepath.Join("/sys/fs/btrfs", uuid, "qgroups")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	used := map[uint64]int64{}
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), "0_")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "referenced"))
		if err != nil {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			used[n] = v
		}
	}
	return used
}

// Activate implements backend.Backend: a volume is a directory, ready as
// it is; the Manager bind-mounts it.
func (b *Backend) Activate(ctx context.Context, pool, name string) (*backend.Volume, error) {
	if _, err := b.pools.Open(ctx, pool); err != nil {
		return nil, err
	}
	var sc sidecar
	imagepool.ReadJSON(b.sidecarPath(pool, name), &sc)
	return b.volume(pool, name, sc, nil)
}

// Remove implements backend.Backend. btrfs frees a deleted subvolume's
// space in the background; Remove waits (a bounded time) until it has,
// so the pool's figures are right when it returns and a full pool is
// usable at once.
func (b *Backend) Remove(ctx context.Context, pool, name string) error {
	if _, err := b.pools.Open(ctx, pool); err != nil {
		return err
	}
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("volume name %q: %w", name, backend.ErrInvalidName)
	}
	p := b.path(pool, name)
	id, _ := subvolID(p)
	dir, err := openDir(b.pools.Volumes(pool))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := subvolDestroy(dir, name); err != nil {
		return errno("remove volume "+name, err)
	}
	os.Remove(b.sidecarPath(pool, name))
	if err := fsutil.SyncDir(b.pools.Volumes(pool)); err != nil {
		return err
	}
	if id != 0 {
		b.waitDropped(dir, name, id)
	}
	return nil
}

// waitDropped waits (at most 5 s) until the cleaner has dropped subvolume
// id and the space is free, committing the transaction now and then to
// keep it going.
func (b *Backend) waitDropped(dir *os.File, name string, id uint64) {
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%20 == 0 {
			syncFS(dir)
		}
		exists, err := subvolExists(dir, id)
		if err != nil || !exists {
			// The space the dropped tree held is free from the next
			// commit on.
			syncFS(dir)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.log.Debug("a removed subvolume's space is not back yet", "volume", name, "id", id)
}

// Sweep implements backend.Sweeper: temporaries (subvolumes and their
// lock files) whose writer is gone, sidecars being written by a dead
// writer, and sidecars whose volume never got published. A live writer
// keeps its temporary's lock, so this never races one.
func (b *Backend) Sweep(ctx context.Context, pool string) error {
	if _, err := b.pools.Open(ctx, pool); err != nil {
		return err
	}
	vols := b.pools.Volumes(pool)
	ents, err := os.ReadDir(vols)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, ".tmp-") && strings.HasSuffix(n, ".lock"):
			name := strings.TrimSuffix(strings.TrimPrefix(n, ".tmp-"), ".lock")
			if l, err := lock.TryLock(filepath.Join(vols, n), true); err == nil && l != nil {
				b.destroyTemp(pool, name)
				os.Remove(filepath.Join(vols, n))
				l.Release()
			}
		case strings.HasPrefix(n, ".tmp-") && e.IsDir() && !have[n+".lock"]:
			// A temporary without its lock file: its writer is gone.
			b.destroyTemp(pool, strings.TrimPrefix(n, ".tmp-"))
		case strings.HasPrefix(n, ".") && strings.Contains(n, ".json.tmp-"):
			name := strings.TrimPrefix(n[:strings.Index(n, ".json.tmp-")], ".")
			if _, held := lock.HolderOf(filepath.Join(vols, tmpName(name)+".lock"), true); !held {
				os.Remove(filepath.Join(vols, n))
			}
		case strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, "."):
			name := strings.TrimSuffix(n, ".json")
			if !have[name] && !have[tmpName(name)] {
				if _, err := os.Lstat(filepath.Join(vols, name)); errors.Is(err, fs.ErrNotExist) {
					os.Remove(filepath.Join(vols, n))
				}
			}
		}
	}
	return nil
}

// destroyTemp removes the temporary subvolume of name, if there is one.
// The caller holds its lock (or knows its writer is gone).
func (b *Backend) destroyTemp(pool, name string) {
	dir, err := openDir(b.pools.Volumes(pool))
	if err != nil {
		return
	}
	defer dir.Close()
	if err := subvolDestroy(dir, tmpName(name)); err == nil {
		b.log.Info("removed an abandoned temporary volume", "pool", pool, "volume", name)
	} else if !errors.Is(err, unix.ENOENT) {
		b.log.Warn("remove an abandoned temporary volume", "pool", pool, "volume", name, "err", err)
	}
}

// Rename implements backend.Renamer: the sidecar under the new name
// first, then the subvolume (never over another one), then the old
// sidecar goes. A bind mount of the subvolume follows it. Sweep removes
// the stray sidecar a crash may leave.
func (b *Backend) Rename(ctx context.Context, pool, oldName, newName string) error {
	if _, err := b.pools.Open(ctx, pool); err != nil {
		return err
	}
	for _, n := range []string{oldName, newName} {
		if n == "" || strings.ContainsAny(n, "/\x00") || strings.HasPrefix(n, ".") {
			return fmt.Errorf("volume name %q: %w", n, backend.ErrInvalidName)
		}
	}
	if _, err := os.Stat(b.path(pool, oldName)); err != nil {
		return fmt.Errorf("rename volume %s: %w", oldName, backend.ErrNotFound)
	}
	var sc sidecar
	imagepool.ReadJSON(b.sidecarPath(pool, oldName), &sc)
	sc.Name = newName
	return imagepool.RenameVolume(oldName, newName, b.path(pool, oldName), b.path(pool, newName),
		b.sidecarPath(pool, oldName), b.sidecarPath(pool, newName), b.pools.Volumes(pool),
		func() error { return imagepool.WriteJSON(b.sidecarPath(pool, newName), sc) })
}
