package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Picture is what a user relies on, normalized so that two pictures can be
// compared as strings: whether the pool exists and, per config, whether it
// is initialized, its snapshots, its workdirs (each with the snapshot it
// is filed under) and the current snapshot of every tracked unique-ext.
// Sizes, times and devices are left out: they differ between equivalent
// histories.
type Picture struct {
	Pools   map[string]bool // pool -> exists
	Configs map[string]*ConfigPicture
}

// ConfigPicture is one config in a Picture.
type ConfigPicture struct {
	Pool      string
	Ready     bool
	Snapshots map[string]bool
	Workdirs  map[string]string // ext -> snapshot it is filed under
	// Current is the current snapshot of each tracked ext ("" when the
	// config has none).
	Current map[string]string
}

func newConfigPicture() *ConfigPicture {
	return &ConfigPicture{Snapshots: map[string]bool{}, Workdirs: map[string]string{}, Current: map[string]string{}}
}

// String is the canonical form: equal pictures have equal strings.
func (p Picture) String() string {
	var b strings.Builder
	for _, pool := range sortedKeys(p.Pools) {
		fmt.Fprintf(&b, "pool %s=%v ", pool, p.Pools[pool])
	}
	roots := make([]string, 0, len(p.Configs))
	for r := range p.Configs {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	for _, r := range roots {
		c := p.Configs[r]
		fmt.Fprintf(&b, " | %s ready=%v snaps=[%s] workdirs=[%s] current=[%s]", r, c.Ready,
			strings.Join(sortedKeys(c.Snapshots), " "), kvs(c.Workdirs), kvs(c.Current))
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kvs(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+":"+m[k])
	}
	return strings.Join(parts, " ")
}

// Clone returns a deep copy.
func (p Picture) Clone() Picture {
	out := Picture{Pools: map[string]bool{}, Configs: map[string]*ConfigPicture{}}
	for k, v := range p.Pools {
		out.Pools[k] = v
	}
	for r, c := range p.Configs {
		n := newConfigPicture()
		n.Pool, n.Ready = c.Pool, c.Ready
		for k, v := range c.Snapshots {
			n.Snapshots[k] = v
		}
		for k, v := range c.Workdirs {
			n.Workdirs[k] = v
		}
		for k, v := range c.Current {
			n.Current[k] = v
		}
		out.Configs[r] = n
	}
	return out
}

// ManagerPicture is the picture a Manager publishes of the given configs
// and their pools. The current snapshot of each ext comes from
// Manager.Current, as every command reads it.
func ManagerPicture(m *lvm.Manager, cfgs []lvm.Config, exts []string) Picture {
	st := m.State()
	p := Picture{Pools: map[string]bool{}, Configs: map[string]*ConfigPicture{}}
	for _, c := range cfgs {
		ps := st.Pool(c.Pool)
		p.Pools[c.Pool] = ps != nil && ps.Stats.SizeBytes > 0
		cp := newConfigPicture()
		cp.Pool = c.Pool
		p.Configs[c.Root] = cp
		ps, cs := st.Config(c.Root)
		if cs == nil || ps.Name != c.Pool {
			continue
		}
		cp.Ready = cs.State == lvm.StateReady
		for _, s := range cs.Snapshots {
			cp.Snapshots[s.Name] = true
		}
		for _, w := range cs.Workdirs {
			cp.Workdirs[w.Ext] = w.Snapshot
		}
		for _, ext := range exts {
			cur, err := m.Current(c.Root, ext)
			if err != nil {
				cur = ""
			}
			cp.Current[ext] = cur
		}
	}
	return p
}

// DiskPicture reads the same picture straight from the backend and mock's
// records, without a Manager: what a fresh process on the host would find.
func DiskPicture(ctx context.Context, be backend.Backend, cfgs []lvm.Config, exts []string) (Picture, error) {
	p := Picture{Pools: map[string]bool{}, Configs: map[string]*ConfigPicture{}}
	roots := make([]string, len(cfgs))
	for i, c := range cfgs {
		roots[i] = c.Root
	}
	reports := map[string]*backend.PoolReport{}
	for _, c := range cfgs {
		if _, ok := reports[c.Pool]; ok {
			continue
		}
		r, err := be.Scan(ctx, c.Pool)
		switch {
		case errors.Is(err, lvm.ErrNotFound):
			r = &backend.PoolReport{}
			p.Pools[c.Pool] = false
		case err != nil:
			return p, err
		default:
			p.Pools[c.Pool] = true
		}
		reports[c.Pool] = r
	}
	for _, c := range cfgs {
		r := reports[c.Pool]
		cp := newConfigPicture()
		cp.Pool = c.Pool
		p.Configs[c.Root] = cp
		origins := map[string]string{}
		for _, v := range r.Volumes {
			vn, ok := mock.ParseVolume(v.Name, roots)
			if !ok || !v.Thin || vn.Root != c.Root {
				continue
			}
			if vn.Workdir {
				origins[vn.Name] = v.Origin
			} else {
				cp.Snapshots[vn.Name] = true
			}
		}
		cp.Ready = cp.Snapshots[lvm.PostInit]
		current := func(ext string) (string, error) {
			b, err := os.ReadFile(c.SnapinfoPath(ext))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			if vn, ok := mock.ParseVolume(strings.TrimRight(string(b), " \t\r\n"), []string{c.Root}); ok && !vn.Workdir &&
				vn.Root == c.Root && cp.Snapshots[vn.Name] {
				return vn.Name, nil
			}
			if cp.Ready {
				return lvm.PostInit, nil
			}
			return "", nil
		}
		for ext, origin := range origins {
			if vn, ok := mock.ParseVolume(origin, []string{c.Root}); ok && !vn.Workdir && vn.Root == c.Root && cp.Snapshots[vn.Name] {
				cp.Workdirs[ext] = vn.Name
				continue
			}
			cur, err := current(ext)
			if err != nil {
				return p, err
			}
			cp.Workdirs[ext] = cur
		}
		for _, ext := range exts {
			cur, err := current(ext)
			if err != nil {
				return p, err
			}
			cp.Current[ext] = cur
		}
	}
	return p, nil
}

// Op is one operation of the serial model: what a user asked for.
type Op struct {
	Kind string // init, scrub, snapshot, set-current, rollback-to, remove-snapshot, workdir-create, workdir-remove, ensure-pool
	Root string
	Snap string // the snapshot acted on or cloned from ("" for ext's current)
	Ext  string
	Name string // a new snapshot's name
}

func (o Op) String() string {
	s := o.Kind + " " + o.Root
	for _, f := range []string{o.Snap, o.Ext, o.Name} {
		if f != "" {
			s += " " + f
		}
	}
	return s
}

// Apply is the serial model: the picture after op runs alone on p, and
// whether it succeeds. An operation that fails changes nothing. exts are
// the tracked unique-exts; uniqueExt is the config's own (rollback-to's).
func Apply(p Picture, op Op) (Picture, bool) {
	q := p.Clone()
	c := q.Configs[op.Root]
	if c == nil {
		return p, false
	}
	resolve := func() {
		// Records naming a snapshot that is gone read as postinit, as
		// mock reads them (thinroot also rewrites them so).
		for ext, cur := range c.Current {
			if !c.Snapshots[cur] {
				if c.Snapshots[lvm.PostInit] {
					c.Current[ext] = lvm.PostInit
				} else {
					c.Current[ext] = ""
				}
			}
		}
	}
	switch op.Kind {
	case "ensure-pool":
		q.Pools[c.Pool] = true
	case "init":
		q.Pools[c.Pool] = true
		if !c.Ready {
			c.Ready = true
			c.Snapshots[lvm.PostInit] = true
			for ext := range c.Current {
				c.Current[ext] = lvm.PostInit
			}
		}
	case "scrub":
		c.Ready = false
		c.Snapshots = map[string]bool{}
		c.Workdirs = map[string]string{}
		for ext := range c.Current {
			c.Current[ext] = ""
		}
		// The pool goes with the last config that has volumes in it.
		empty := true
		for _, o := range q.Configs {
			if o.Pool == c.Pool {
				empty = empty && len(o.Snapshots) == 0 && len(o.Workdirs) == 0
			}
		}
		if empty {
			q.Pools[c.Pool] = false
		}
	case "spare-make", "spare-remove":
		// Spares are nobody's: the picture does not change.
	case "workdir-create", "spare-take":
		snap := op.Snap
		if snap == "" {
			snap = c.Current[op.Ext]
		}
		if !c.Ready || !c.Snapshots[snap] {
			return p, false
		}
		if _, ok := c.Workdirs[op.Ext]; ok {
			return p, false
		}
		c.Workdirs[op.Ext] = snap
		if _, tracked := c.Current[op.Ext]; tracked {
			c.Current[op.Ext] = snap
		}
	case "workdir-remove":
		if _, ok := c.Workdirs[op.Ext]; !ok {
			return p, false
		}
		delete(c.Workdirs, op.Ext)
	case "snapshot":
		if _, ok := c.Workdirs[op.Ext]; !ok || c.Snapshots[op.Name] {
			return p, false
		}
		c.Snapshots[op.Name] = true
		if _, tracked := c.Current[op.Ext]; tracked {
			c.Current[op.Ext] = op.Name
		}
	case "set-current":
		if !c.Snapshots[op.Snap] {
			return p, false
		}
		if _, tracked := c.Current[op.Ext]; tracked {
			c.Current[op.Ext] = op.Snap
		}
	case "rollback-to":
		if !c.Snapshots[op.Snap] {
			return p, false
		}
		if _, tracked := c.Current[op.Ext]; tracked {
			c.Current[op.Ext] = op.Snap
		}
		delete(c.Workdirs, op.Ext)
	case "remove-snapshot":
		if op.Snap == lvm.PostInit || !c.Snapshots[op.Snap] {
			return p, false
		}
		for _, s := range c.Workdirs {
			if s == op.Snap {
				return p, false
			}
		}
		delete(c.Snapshots, op.Snap)
	default:
		panic("faults: unknown op " + op.Kind)
	}
	resolve()
	return q, true
}
