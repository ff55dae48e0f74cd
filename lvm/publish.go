package lvm

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Publishing a State happens in three steps, so that the Manager's lock
// is never held while the disk is read: copy what the Manager holds
// (under m.mu), read what lives on disk beside the backends (the mount
// table, the journal, the records, lock holders, init failures), then
// build the State from both. pubMu keeps publications in order.

// afterView, when set (by tests), runs in a publication between copying
// the Manager's picture and storing the State.
var afterView func()

// publish builds a new State and publishes it.
func (m *Manager) publish() *State {
	st, _ := m.publishAll()
	return st
}

// publishAll is publish that also returns the dead intents it found.
func (m *Manager) publishAll() (*State, []journal.Listed) {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	v := m.snapshotView()
	if afterView != nil {
		afterView()
	}
	f := m.readJournal()
	st, need := v.build(f.hidden)
	v.gather(m, need, &f)
	v.finish(st, f)
	m.gen++
	st.Generation = m.gen
	m.state.Store(st)
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	return st, f.dead
}

// view is what the Manager holds, copied at one moment.
type view struct {
	configs map[string]Config
	pools   []poolView
	holds   map[string]string
	basedir string
	warn    float64
	refuse  float64
}

type poolView struct {
	name, kind string
	report     *backend.PoolReport
	err        error
	wanted     bool // a registered config names it
}

func (m *Manager) snapshotView() *view {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirty = false
	v := &view{configs: map[string]Config{}, holds: map[string]string{}, basedir: m.opts.Basedir,
		warn: m.opts.WarnPercent, refuse: m.opts.RefusePercent}
	for r, c := range m.configs {
		v.configs[r] = *c
	}
	for k, w := range m.holds {
		v.holds[k] = w
	}
	for _, n := range sortedKeys(m.pools) {
		p := m.pools[n]
		v.pools = append(v.pools, poolView{name: n, kind: p.backend.Kind(), report: p.report, err: p.err,
			wanted: m.poolHasConfigs(n)})
	}
	return v
}

// config is the registered config of root or a stand-in with mock's
// defaults for a config known only through its volumes.
func (v *view) config(root, pool string) Config {
	if c, ok := v.configs[root]; ok {
		return c
	}
	return Config{Root: root, Pool: pool, Basedir: v.basedir, UniqueExt: mock.DefaultExt}
}

// needs are the files build wants read: records by path, and the configs
// whose init state depends on lock holders and failure records.
type needs struct {
	records  map[string]bool
	initless map[string]Config // by root: no postinit
}

// facts are what gather read.
type facts struct {
	mounted      func(string) bool
	hidden       map[string]bool // pool + "/" + volume
	initializing map[string]journal.Listed
	dead         []journal.Listed
	records      map[string]string // path -> the volume it names, "" for none
	initHolder   map[string]lock.Holder
	failed       map[string]string
}

// build makes the State's structure from the view: pools, their configs,
// snapshots and workdirs (but not the hidden volumes), and says which
// files finish needs.
func (v *view) build(hidden map[string]bool) (*State, needs) {
	st := &State{Taken: time.Now()}
	nd := needs{records: map[string]bool{}, initless: map[string]Config{}}
	roots := make([]string, 0, len(v.configs))
	for r := range v.configs {
		roots = append(roots, r)
	}
	for _, p := range v.pools {
		if p.report == nil && p.err == nil && !p.wanted {
			continue // a pool that does not exist and nobody wants
		}
		ps := v.buildPool(p, roots, hidden)
		for i := range ps.Configs {
			cs := &ps.Configs[i]
			c := v.config(cs.Root, cs.Pool)
			nd.records[c.SnapinfoPath(mock.DefaultExt)] = true
			for _, w := range cs.Workdirs {
				nd.records[c.SnapinfoPath(w.Ext)] = true
			}
			if cs.Snapshot(mock.PostInit) == nil {
				nd.initless[cs.Root] = c
			}
		}
		st.Pools = append(st.Pools, ps)
	}
	return st, nd
}

// buildPool is one pool of build. Volumes that are not ours are counted
// and never shown.
func (v *view) buildPool(p poolView, roots []string, hidden map[string]bool) PoolState {
	ps := PoolState{Name: p.name, Backend: p.kind}
	if p.err != nil {
		ps.Err = p.err.Error()
	}
	byRoot := map[string]*ConfigState{}
	get := func(root string) *ConfigState {
		if cs, ok := byRoot[root]; ok {
			return cs
		}
		cs := &ConfigState{Root: root, Pool: p.name}
		if c, ok := v.configs[root]; ok && c.Pool == p.name {
			cs.Known = true
		}
		byRoot[root] = cs
		return cs
	}
	for r, c := range v.configs {
		if c.Pool == p.name {
			get(r)
		}
	}
	if p.report != nil {
		for _, vol := range p.report.Volumes {
			if !vol.Thin {
				continue
			}
			if IsSpare(vol.Name) {
				ps.Stats.Spares++ // not the user's: counted apart, invisible
				continue
			}
			ps.Stats.ThinVolumes++
			if hidden[p.name+"/"+vol.Name] {
				continue
			}
			vn, ok := mock.ParseVolume(vol.Name, roots)
			if !ok {
				continue
			}
			if c, ok := v.configs[vn.Root]; ok && c.Pool != p.name {
				continue // same root in another pool: not this config's
			}
			addVolume(get(vn.Root), vn, vol)
		}
	}
	for _, r := range sortedKeys(byRoot) {
		cs := byRoot[r]
		sort.Slice(cs.Snapshots, func(i, j int) bool { return cs.Snapshots[i].Name < cs.Snapshots[j].Name })
		sort.Slice(cs.Workdirs, func(i, j int) bool { return cs.Workdirs[i].Ext < cs.Workdirs[j].Ext })
		ps.Configs = append(ps.Configs, *cs)
		ps.Stats.Configs++
		ps.Stats.Snapshots += len(cs.Snapshots)
		ps.Stats.Workdirs += len(cs.Workdirs)
	}
	v.fillStats(&ps.Stats, p)
	return ps
}

func addVolume(cs *ConfigState, vn mock.VolumeName, vol backend.Volume) {
	if vn.Workdir {
		cs.Workdirs = append(cs.Workdirs, WorkdirState{
			Root: vn.Root, Ext: vn.Name, LV: vol.Name, Snapshot: vol.Origin,
			Created: vol.Created, VirtualSize: vol.VirtualSize, UsedBytes: vol.UsedBytes, Device: vol.Mount.Source,
		})
		return
	}
	cs.Snapshots = append(cs.Snapshots, SnapshotState{
		Name: vn.Name, LV: vol.Name, Origin: vol.Origin, Created: vol.Created,
		VirtualSize: vol.VirtualSize, UsedBytes: vol.UsedBytes,
	})
}

// readJournal lists the journal: volumes being made by a live operation
// are not shown yet, nor any volume of an operation whose process died
// (until it is finished); a config whose init runs shows as
// initializing.
func (m *Manager) readJournal() facts {
	f := facts{hidden: map[string]bool{}, initializing: map[string]journal.Listed{}}
	for _, in := range m.journal.List() {
		if !in.Op.Forward() || !in.Live {
			for _, vol := range in.Volumes {
				f.hidden[in.Pool+"/"+vol] = true
			}
		}
		if in.Op == journal.Init && in.Live {
			f.initializing[in.Root] = in
		}
		if !in.Live {
			f.dead = append(f.dead, in)
		}
	}
	return f
}

// gather reads the rest of what finish needs from the disk.
func (v *view) gather(m *Manager, nd needs, f *facts) {
	f.records, f.initHolder, f.failed = map[string]string{}, map[string]lock.Holder{}, map[string]string{}
	f.mounted, _ = m.mounter.Mounted()
	for p := range nd.records {
		b, err := os.ReadFile(p)
		if err == nil {
			f.records[p] = strings.TrimRight(string(b), " \t\r\n")
		}
	}
	for root, c := range nd.initless {
		if h, held := lock.HolderOf(c.InitLockPath(), true); held {
			f.initHolder[root] = h
		} else if b, err := os.ReadFile(m.statusPath(root)); err == nil {
			f.failed[root] = strings.TrimSpace(string(b))
		}
	}
}

// finish fills in what build could not know: current snapshots, mounts,
// holds, init states.
func (v *view) finish(st *State, f facts) {
	for i := range st.Pools {
		for j := range st.Pools[i].Configs {
			v.finishConfig(&st.Pools[i].Configs[j], f)
		}
	}
}

// finishConfig fills the parts of a ConfigState that come from outside
// the backend: current snapshot, mounts, holds, init state.
func (v *view) finishConfig(cs *ConfigState, f facts) {
	c := v.config(cs.Root, cs.Pool)
	snapOf := func(vol string) string {
		if vn, ok := mock.ParseVolume(vol, []string{cs.Root}); ok && !vn.Workdir && vn.Root == cs.Root && cs.Snapshot(vn.Name) != nil {
			return vn.Name
		}
		return ""
	}
	hasPostinit := cs.Snapshot(mock.PostInit) != nil
	current := func(ext string) string {
		if s := snapOf(f.records[c.SnapinfoPath(ext)]); s != "" {
			return s
		}
		if hasPostinit {
			return mock.PostInit
		}
		return ""
	}
	cs.Current = current(mock.DefaultExt)
	for i := range cs.Workdirs {
		w := &cs.Workdirs[i]
		// A workdir is filed under the snapshot it was cloned from; one
		// whose origin is not a snapshot (mock's head right after init)
		// under its ext's current snapshot, as mock would roll it back.
		if s := snapOf(w.Snapshot); s != "" {
			w.Snapshot = s
		} else {
			w.Snapshot = current(w.Ext)
		}
		w.Mountpoint = c.ChrootDir(w.Ext)
		w.Mounted = f.mounted(w.Mountpoint)
		w.Busy = v.holds[cs.Root+"/"+w.Ext]
		if s := cs.Snapshot(w.Snapshot); s != nil {
			s.Workdirs = append(s.Workdirs, *w)
		}
	}
	cs.State, cs.StateDetail = initState(cs.Root, hasPostinit, f)
}

// initState is a config's state and its detail.
func initState(root string, hasPostinit bool, f facts) (string, string) {
	if in, ok := f.initializing[root]; ok {
		return StateInitializing, fmt.Sprintf("since %s, pid %d", in.Started.Format(time.RFC3339), in.PID)
	}
	if hasPostinit {
		return StateReady, ""
	}
	if h, ok := f.initHolder[root]; ok && h.Exclusive {
		if h.PID > 0 {
			return StateInitializing, "pid " + strconv.Itoa(h.PID)
		}
		return StateInitializing, "by another process"
	}
	if why, ok := f.failed[root]; ok {
		return StateFailed, why
	}
	return StateUninitialized, ""
}

// fillStats computes a pool's figures and status.
func (v *view) fillStats(s *Stats, p poolView) {
	s.Backend = p.kind
	s.Pool = p.name
	s.WarnPercent, s.RefusePercent = v.warn, v.refuse
	r := p.report
	if r == nil {
		s.Status = StatusOK
		s.Updated = time.Now()
		if p.err != nil {
			s.Health = p.err.Error()
		}
		return
	}
	if r.WarnPercent > 0 {
		s.WarnPercent = r.WarnPercent
	}
	if r.RefusePercent > 0 {
		s.RefusePercent = r.RefusePercent
	}
	s.SizeBytes, s.UsedBytes = r.SizeBytes, r.UsedBytes
	s.FreeBytes = r.SizeBytes - r.UsedBytes
	s.DataPercent = round2(r.DataPercent)
	s.MetadataPercent = round2(r.MetadataPercent)
	s.MetadataLabel = r.MetadataLabel
	s.Health = r.Health
	s.Updated = r.Scanned
	top := max(r.DataPercent, r.MetadataPercent)
	switch {
	case r.Health != "" || top >= s.RefusePercent:
		s.Status = StatusFull
	case top >= s.WarnPercent:
		s.Status = StatusWarn
	default:
		s.Status = StatusOK
	}
}

func round2(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}
