// Package builddeps keeps builddep snapshots: the root of a config after
// a build's BuildRequires were installed, snapshotted under a key of
// (config, the state it was installed on, the repositories' metadata
// checksums, the sorted set of requested BuildRequires). The next build
// that would install the same set on the same state clones the snapshot
// instead and skips the package manager. mock has nothing like it: it
// reinstalls BuildRequires into every fresh root.
//
// The snapshots are ordinary snapshots of the config, named "bd-" and 16
// hex digits of the key, so they show in the tree and in list-snapshots.
// Each has a record (a small JSON file) under the cache directory with
// its key, what it was made from and when it was last used. They are
// bounded by count and by pool space, least recently used first, and
// dropped when the repositories' metadata changes (their key can never
// match again).
//
// Concurrency: one process installs a key at a time. A build that finds
// the key being installed waits on the key's lock and clones the
// snapshot when it is there; no other lock is held.
package builddeps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/lvm"
)

// Prefix starts every builddep snapshot's name.
const Prefix = "bd-"

// IsSnapshot tells whether a snapshot name is a builddep snapshot's.
func IsSnapshot(name string) bool {
	if !strings.HasPrefix(name, Prefix) || len(name) != len(Prefix)+16 {
		return false
	}
	return strings.Trim(name[len(Prefix):], "0123456789abcdef") == ""
}

// KeyInput is what a key is made of.
type KeyInput struct {
	// Config identifies the config's package manager setup (root, dnf.conf,
	// releasever, options): ConfigHash's result.
	Config string
	// Base is the state the BuildRequires are installed on: a snapshot
	// (BaseSnapshot) or the key of the round before.
	Base string
	// Repos is the repositories' metadata digest.
	Repos string
	// Requires is the set of requested BuildRequires.
	Requires []string
}

// Key is the hex sha256 of the input, the requires sorted and unique.
func Key(in KeyInput) string {
	h := sha256.New()
	fmt.Fprintf(h, "thinroot builddep key 1\nconfig %s\nbase %s\nrepos %s\n", in.Config, in.Base, in.Repos)
	for _, r := range SortedSet(in.Requires) {
		fmt.Fprintf(h, "requires %s\n", r)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SortedSet returns the sorted set of xs.
func SortedSet(xs []string) []string {
	out := make([]string, 0, len(xs))
	seen := map[string]bool{}
	for _, x := range xs {
		x = strings.Join(strings.Fields(x), " ")
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// ConfigHash hashes what identifies a config's installs (any value that
// marshals to JSON: the package manager's spec without its cache path).
func ConfigHash(root string, v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(append([]byte(root+"\n"), b...))
	return hex.EncodeToString(h[:])
}

// BaseSnapshot identifies a snapshot as a base: its name and creation
// time, so a snapshot made again under an old name is another base.
func BaseSnapshot(name string, created time.Time) string {
	return fmt.Sprintf("snapshot %s@%d", name, created.UnixNano())
}

// BaseKey identifies the state a builddep snapshot left as a base.
func BaseKey(key string) string { return "key " + key }

// SnapshotName is the snapshot of a key.
func SnapshotName(key string) string { return Prefix + key[:16] }

// Record is a builddep snapshot's record.
type Record struct {
	Key      string    `json:"key"`
	Snapshot string    `json:"snapshot"`
	Config   string    `json:"config"`
	Base     string    `json:"base"`
	Repos    string    `json:"repos"`
	Requires []string  `json:"requires"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
	// Ready is set once the snapshot exists; a record without it is an
	// install in progress, or one that died.
	Ready bool `json:"ready"`
	// Converged says the request made in the snapshot's root asked for
	// nothing more: a build cloning it needs no further round.
	Converged bool `json:"converged,omitempty"`
	// By is the build that made it.
	By string `json:"by,omitempty"`
}

// Volumes is what the cache needs of the Manager.
type Volumes interface {
	State() *lvm.State
	RemoveSnapshot(ctx context.Context, root, snap string) error
}

// Policy bounds a config's builddep snapshots.
type Policy struct {
	// Max is how many the config keeps; 0 turns builddep snapshots off.
	Max int
	// PoolPercent: while the pool's data or metadata use is above it,
	// the least recently used go.
	PoolPercent float64
}

// Cache is one config's builddep snapshots.
type Cache struct {
	Dir    string // the records and lock files: <state>/builddeps/<root>
	Root   string
	Policy Policy
	Vols   Volumes
	Log    func(format string, args ...any)
	Now    func() time.Time
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now().UTC()
}

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// Enabled tells whether the config keeps builddep snapshots.
func (c *Cache) Enabled() bool { return c != nil && c.Policy.Max > 0 }

func (c *Cache) recordPath(snap string) string { return filepath.Join(c.Dir, snap+".json") }
func (c *Cache) lockPath(snap string) string   { return filepath.Join(c.Dir, snap+".lock") }

// read loads a record; nil when there is none (or it does not parse).
func (c *Cache) read(snap string) *Record {
	b, err := os.ReadFile(c.recordPath(snap))
	if err != nil {
		return nil
	}
	var r Record
	if json.Unmarshal(b, &r) != nil || r.Snapshot != snap {
		return nil
	}
	return &r
}

// write stores a record atomically.
func (c *Cache) write(r *Record) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := c.recordPath(r.Snapshot)
	tmp, err := os.CreateTemp(c.Dir, "."+r.Snapshot+".json.tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// snapshotExists tells whether the config has the snapshot now.
func (c *Cache) snapshotExists(snap string) bool {
	_, cs := c.Vols.State().Config(c.Root)
	return cs != nil && cs.Snapshot(snap) != nil
}

// Lookup returns the ready record of key when its snapshot exists.
func (c *Cache) Lookup(key string) (*Record, bool) {
	snap := SnapshotName(key)
	r := c.read(snap)
	if r == nil || !r.Ready || r.Key != key || !c.snapshotExists(snap) {
		return nil, false
	}
	return r, true
}

// Lock takes key's lock: exclusive to install it, shared to clone its
// snapshot (which keeps eviction off it meanwhile). waiting is called
// once when the lock is busy.
func (c *Cache) Lock(ctx context.Context, key string, exclusive bool, waiting func()) (func(), error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.lockPath(SnapshotName(key)), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !said && waiting != nil {
			waiting()
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tryLock takes key's lock exclusively if nobody holds it.
func (c *Cache) tryLock(snap string) (func(), bool) {
	f, err := os.OpenFile(c.lockPath(snap), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, false
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

// Begin records that key is being installed (under its exclusive lock).
func (c *Cache) Begin(key, base, repos string, requires []string, by string) (*Record, error) {
	now := c.now()
	r := &Record{Key: key, Snapshot: SnapshotName(key), Config: c.Root, Base: base, Repos: repos,
		Requires: SortedSet(requires), Created: now, LastUsed: now, By: by}
	return r, c.write(r)
}

// Commit marks a record ready: its snapshot exists.
func (c *Cache) Commit(r *Record) error {
	r.Ready = true
	return c.write(r)
}

// Abort forgets a record whose install failed.
func (c *Cache) Abort(r *Record) { os.Remove(c.recordPath(r.Snapshot)) }

// Touch notes that a build used key's snapshot.
func (c *Cache) Touch(r *Record) {
	r.LastUsed = c.now()
	if err := c.write(r); err != nil {
		c.logf("builddep snapshot %s: record its use: %v", r.Snapshot, err)
	}
}

// SetConverged notes that a request made in key's root asked for nothing
// more than key's.
func (c *Cache) SetConverged(r *Record) {
	if r.Converged {
		return
	}
	r.Converged = true
	if err := c.write(r); err != nil {
		c.logf("builddep snapshot %s: %v", r.Snapshot, err)
	}
}

// Records lists the config's records.
func (c *Cache) Records() []Record {
	ents, err := os.ReadDir(c.Dir)
	if err != nil {
		return nil
	}
	var out []Record
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !IsSnapshot(n) {
			continue
		}
		if r := c.read(n); r != nil {
			out = append(out, *r)
		}
	}
	return out
}

// Victims is an eviction plan.
type Victims struct {
	// Drop go whatever the pool's use: records whose repositories'
	// metadata changed or whose base snapshot is gone (their key can never
	// match again), then the least recently used beyond the count.
	Drop []Record
	// ForSpace are the rest, least recently used first: they go one by one
	// while the pool is over the policy's percentage.
	ForSpace []Record
}

// Plan decides which ready records go. repos is the current metadata
// digest ("" when unknown: nothing is stale by repositories); baseOK
// tells whether a record's base still exists.
func Plan(recs []Record, p Policy, repos string, baseOK func(base string) bool) Victims {
	var v Victims
	var live []Record
	for _, r := range recs {
		if !r.Ready {
			continue
		}
		if (repos != "" && r.Repos != repos) || (baseOK != nil && !baseOK(r.Base)) {
			v.Drop = append(v.Drop, r)
			continue
		}
		live = append(live, r)
	}
	sort.SliceStable(live, func(i, j int) bool {
		if !live[i].LastUsed.Equal(live[j].LastUsed) {
			return live[i].LastUsed.Before(live[j].LastUsed)
		}
		return live[i].Snapshot < live[j].Snapshot
	})
	if over := len(live) - p.Max; over > 0 {
		v.Drop = append(v.Drop, live[:over]...)
		live = live[over:]
	}
	v.ForSpace = live
	return v
}

// Evict applies the policy: it removes the snapshots Plan drops, then the
// least recently used while the pool is over the policy's percentage,
// skipping any a build is using (its key lock is held, or it has
// workdirs). It also clears what a killed install left: records never
// made ready, and bd- snapshots without a record. keep is a key not to
// evict (the one the caller just made). It returns the snapshots removed.
func (c *Cache) Evict(ctx context.Context, repos, keep string) []string {
	st := c.Vols.State()
	pool, cs := st.Config(c.Root)
	if cs == nil {
		return nil
	}
	var removed []string
	remove := func(snap, why string) bool {
		if keep != "" && snap == SnapshotName(keep) {
			return false
		}
		unlock, ok := c.tryLock(snap)
		if !ok {
			return false // a build installs or clones it now
		}
		defer unlock()
		err := c.Vols.RemoveSnapshot(ctx, c.Root, snap)
		if err != nil && !errors.Is(err, lvm.ErrNotFound) {
			if !errors.Is(err, lvm.ErrNotEmpty) {
				c.logf("builddep snapshot %s: remove: %v", snap, err)
			}
			return false
		}
		os.Remove(c.recordPath(snap))
		removed = append(removed, snap)
		c.logf("removed builddep snapshot %s (%s)", snap, why)
		return true
	}
	recs := c.Records()
	have := map[string]bool{}
	for _, r := range recs {
		have[r.Snapshot] = true
		if !r.Ready && c.now().Sub(r.Created) > time.Minute {
			// An install that died: its lock is free once its process is gone.
			if unlock, ok := c.tryLock(r.Snapshot); ok {
				unlock()
				remove(r.Snapshot, "left by an interrupted install")
				os.Remove(c.recordPath(r.Snapshot))
			}
		}
	}
	for _, s := range cs.Snapshots {
		if IsSnapshot(s.Name) && !have[s.Name] && c.now().Sub(s.Created) > time.Minute {
			remove(s.Name, "no record")
		}
	}
	baseOK := func(base string) bool {
		name, at, ok := parseBase(base)
		if !ok {
			return true // a key: the round before needs no snapshot
		}
		s := cs.Snapshot(name)
		return s != nil && s.Created.UnixNano() == at
	}
	v := Plan(recs, c.Policy, repos, baseOK)
	for _, r := range v.Drop {
		why := "over the count"
		if repos != "" && r.Repos != repos {
			why = "repository metadata changed"
		} else if !baseOK(r.Base) {
			why = "its base snapshot is gone"
		}
		remove(r.Snapshot, why)
	}
	if c.Policy.PoolPercent > 0 && pool != nil {
		for _, r := range v.ForSpace {
			s := c.Vols.State()
			p, _ := s.Config(c.Root)
			if p == nil || (p.Stats.DataPercent <= c.Policy.PoolPercent && p.Stats.MetadataPercent <= c.Policy.PoolPercent) {
				break
			}
			remove(r.Snapshot, fmt.Sprintf("pool %s over %.0f%%", p.Name, c.Policy.PoolPercent))
		}
	}
	return removed
}

// parseBase reads a BaseSnapshot string.
func parseBase(base string) (string, int64, bool) {
	rest, ok := strings.CutPrefix(base, "snapshot ")
	if !ok {
		return "", 0, false
	}
	name, at, ok := strings.Cut(rest, "@")
	if !ok {
		return "", 0, false
	}
	var n int64
	if _, err := fmt.Sscanf(at, "%d", &n); err != nil {
		return "", 0, false
	}
	return name, n, true
}

// Forget removes the records of snapshots that no longer exist (removed
// by hand, or with their config's scrub).
func (c *Cache) Forget() {
	_, cs := c.Vols.State().Config(c.Root)
	for _, r := range c.Records() {
		if r.Ready && (cs == nil || cs.Snapshot(r.Snapshot) == nil) {
			if unlock, ok := c.tryLock(r.Snapshot); ok {
				os.Remove(c.recordPath(r.Snapshot))
				unlock()
			}
		}
	}
}
