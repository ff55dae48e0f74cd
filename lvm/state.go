package lvm

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/mount"
)

// publish builds a new State from the cached reports and publishes it.
func (m *Manager) publish() *State {
	table, _ := mount.Table()
	ints := m.intents()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	st := &State{Generation: m.gen, Taken: time.Now()}

	// Volumes being made by a live operation are not shown yet, nor any
	// volume of an operation whose process died (until it is recovered);
	// a config whose init runs shows as initializing.
	hidden := map[string]bool{}
	initializing := map[string]intent{}
	for _, in := range ints {
		if !in.Forward || !in.live {
			for _, v := range in.Volumes {
				hidden[in.Pool+"/"+v] = true
			}
		}
		if in.Op == "init" && in.live {
			initializing[in.Root] = in.intent
		}
	}

	roots := make([]string, 0, len(m.configs))
	for r := range m.configs {
		roots = append(roots, r)
	}
	names := make([]string, 0, len(m.pools))
	for n := range m.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := m.pools[name]
		if p.report == nil && p.err == nil && !m.poolHasConfigs(name) {
			continue // a pool that does not exist and nobody wants
		}
		ps := PoolState{Name: name, Backend: p.backend.Kind()}
		if p.err != nil {
			ps.Err = p.err.Error()
		}
		byRoot := map[string]*ConfigState{}
		get := func(root string) *ConfigState {
			if cs, ok := byRoot[root]; ok {
				return cs
			}
			cs := &ConfigState{Root: root, Pool: name}
			if c, ok := m.configs[root]; ok && c.Pool == name {
				cs.Known = true
			}
			byRoot[root] = cs
			return cs
		}
		for r, c := range m.configs {
			if c.Pool == name {
				get(r)
			}
		}
		thin := 0
		if p.report != nil {
			for _, v := range p.report.Volumes {
				if !v.Thin {
					continue
				}
				thin++
				if hidden[name+"/"+v.Name] {
					continue
				}
				vn, ok := ParseLV(v.Name, roots)
				if !ok {
					continue // not ours: never shown, never touched
				}
				if c, ok := m.configs[vn.Root]; ok && c.Pool != name {
					continue // same root in another pool: not this config's
				}
				cs := get(vn.Root)
				if vn.Workdir {
					cs.Workdirs = append(cs.Workdirs, WorkdirState{
						Root: vn.Root, Ext: vn.Name, LV: v.Name, Snapshot: v.Origin,
						Created: v.Created, VirtualSize: v.VirtualSize, UsedBytes: v.UsedBytes, Device: v.Device,
					})
				} else {
					cs.Snapshots = append(cs.Snapshots, SnapshotState{
						Name: vn.Name, LV: v.Name, Origin: v.Origin, Created: v.Created,
						VirtualSize: v.VirtualSize, UsedBytes: v.UsedBytes,
					})
				}
			}
		}
		croots := make([]string, 0, len(byRoot))
		for r := range byRoot {
			croots = append(croots, r)
		}
		sort.Strings(croots)
		for _, r := range croots {
			cs := byRoot[r]
			m.finishConfig(cs, table, initializing)
			ps.Configs = append(ps.Configs, *cs)
			ps.Stats.Configs++
			ps.Stats.Snapshots += len(cs.Snapshots)
			ps.Stats.Workdirs += len(cs.Workdirs)
		}
		ps.Stats.ThinVolumes = thin
		m.fillStats(&ps.Stats, p)
		st.Pools = append(st.Pools, ps)
	}
	m.dirty = false
	m.state.Store(st)
	close(m.changed)
	m.changed = make(chan struct{})
	return st
}

func (m *Manager) poolHasConfigs(name string) bool {
	for _, c := range m.configs {
		if c.Pool == name {
			return true
		}
	}
	return false
}

// configFor returns the registered config or a stand-in with defaults
// (basedir) for a config known only through its volumes.
func (m *Manager) configFor(root, pool string) *Config {
	if c, ok := m.configs[root]; ok {
		return c
	}
	c := &Config{Root: root, Pool: pool, Basedir: m.opts.Basedir, UniqueExt: DefaultExt}
	return c
}

// finishConfig fills the parts of a ConfigState that come from outside
// the backend: current snapshot, mounts, holds, init state.
func (m *Manager) finishConfig(cs *ConfigState, table []mount.Entry, initializing map[string]intent) {
	c := m.configFor(cs.Root, cs.Pool)
	sort.Slice(cs.Snapshots, func(i, j int) bool { return cs.Snapshots[i].Name < cs.Snapshots[j].Name })
	sort.Slice(cs.Workdirs, func(i, j int) bool { return cs.Workdirs[i].Ext < cs.Workdirs[j].Ext })
	snapOf := func(lv string) string {
		if vn, ok := ParseLV(lv, []string{cs.Root}); ok && !vn.Workdir && vn.Root == cs.Root && cs.Snapshot(vn.Name) != nil {
			return vn.Name
		}
		return ""
	}
	hasPostinit := cs.Snapshot(PostInit) != nil
	current := func(ext string) string {
		lv, _ := readSnapinfo(c, ext)
		if s := snapOf(lv); s != "" {
			return s
		}
		if hasPostinit {
			return PostInit
		}
		return ""
	}
	cs.Current = current(DefaultExt)
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
		w.Mountpoint = c.RootPath(w.Ext)
		if _, ok := mount.Lookup(table, w.Mountpoint); ok {
			w.Mounted = true
		}
		w.Busy = m.holds[cs.Root+"/"+w.Ext]
		if s := cs.Snapshot(w.Snapshot); s != nil {
			s.Workdirs = append(s.Workdirs, *w)
		}
	}
	switch in, ok := initializing[cs.Root]; {
	case ok:
		cs.State = StateInitializing
		cs.StateDetail = fmt.Sprintf("since %s, pid %d", in.Started.Format(time.RFC3339), in.PID)
	case hasPostinit:
		cs.State = StateReady
	default:
		if h, held := lock.HolderOf(c.InitLockPath(), true); held && h.Exclusive {
			cs.State = StateInitializing
			cs.StateDetail = "by another process"
			if h.PID > 0 {
				cs.StateDetail = "pid " + strconv.Itoa(h.PID)
			}
		} else if b, err := os.ReadFile(m.statusPath(cs.Root)); err == nil {
			cs.State = StateFailed
			cs.StateDetail = strings.TrimSpace(string(b))
		} else {
			cs.State = StateUninitialized
		}
	}
}

// fillStats computes a pool's figures and status.
func (m *Manager) fillStats(s *Stats, p *poolEntry) {
	s.Backend = p.backend.Kind()
	s.Pool = p.name
	s.WarnPercent, s.RefusePercent = m.opts.WarnPercent, m.opts.RefusePercent
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
