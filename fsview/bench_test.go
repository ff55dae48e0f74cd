package fsview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Benchmarks of the tree's hot paths without a mount: resolving a path
// the way the kernel's lookups do (one directory listing per component),
// a getattr, a listing, rendering files, and the invalidator's pass over
// the whole tree. make bench runs them (bench/gobench.go).

// bigState is a pool with configs configs of perConfig workdirs each, all
// cloned from postinit.
func bigState(configs, perConfig int) *lvm.State {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ps := lvm.PoolState{Name: "mockbuild", Backend: "file",
		Stats: lvm.Stats{Backend: "file", Pool: "mockbuild", SizeBytes: 20 << 30, UsedBytes: 5 << 30,
			ThinVolumes: configs * (perConfig + 1), Configs: configs, Snapshots: configs, Workdirs: configs * perConfig,
			Status: lvm.StatusOK, Updated: created}}
	for i := 0; i < configs; i++ {
		root := fmt.Sprintf("fedora-%02d-x86_64", i)
		cs := lvm.ConfigState{Root: root, Pool: "mockbuild", Known: true, State: lvm.StateReady, Current: lvm.PostInit}
		snap := lvm.SnapshotState{Name: lvm.PostInit, LV: mock.SnapshotVolume(root, lvm.PostInit), Created: created,
			VirtualSize: 8 << 30, UsedBytes: 400 << 20}
		for j := 0; j < perConfig; j++ {
			ext := fmt.Sprintf("w%03d", j)
			w := lvm.WorkdirState{Root: root, Ext: ext, LV: mock.WorkdirVolume(root, ext), Snapshot: lvm.PostInit,
				Created: created, VirtualSize: 8 << 30, UsedBytes: 4 << 20,
				Mountpoint: "/var/lib/mock/" + root + "-" + ext + "/root", Mounted: true, Device: fmt.Sprintf("/dev/loop%d", j)}
			cs.Workdirs = append(cs.Workdirs, w)
			snap.Workdirs = append(snap.Workdirs, w)
		}
		cs.Snapshots = []lvm.SnapshotState{snap}
		ps.Configs = append(ps.Configs, cs)
	}
	return &lvm.State{Generation: 1, Taken: created, Pools: []lvm.PoolState{ps}}
}

func benchTree(configs, perConfig int) (*Tree, *lvm.State) {
	st := bigState(configs, perConfig)
	var cfgs []lvm.Config
	for _, c := range st.Pools[0].Configs {
		cfgs = append(cfgs, lvm.Config{Root: c.Root, Pool: "mockbuild"})
	}
	fm := &fakeModel{st: st, configs: cfgs}
	return newTestTree(fm, false), st
}

// resolve walks path from the root as the kernel's lookups do: each
// component is found in its parent's listing of the current State.
func resolve(t *Tree, st *lvm.State, path string) node {
	var n node = t.root
	for _, part := range strings.Split(path, "/") {
		l, ok := n.(lister)
		if !ok {
			return nil
		}
		kids, _ := l.list(st)
		n = nil
		for _, k := range kids {
			if k.b().name == part {
				n = k
				break
			}
		}
		if n == nil {
			return nil
		}
	}
	return n
}

var treeSizes = []struct{ configs, perConfig int }{{10, 20}, {20, 100}}

// BenchmarkLookupPath resolves a workdir's info file from the root: eight
// lookups, the deepest in a snapshot directory with all of a config's
// workdirs.
func BenchmarkLookupPath(b *testing.B) {
	for _, s := range treeSizes {
		b.Run(fmt.Sprintf("workdirs=%d", s.configs*s.perConfig), func(b *testing.B) {
			t, st := benchTree(s.configs, s.perConfig)
			path := fmt.Sprintf("pools/mockbuild/configs/fedora-%02d-x86_64/snapshots/postinit/w%03d/.info", s.configs-1, s.perConfig-1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if resolve(t, st, path) == nil {
					b.Fatal("not found")
				}
			}
		})
	}
}

// BenchmarkLookupWorkdirLink is the lookup chroot $MNT/workdirs/<c>.<e>
// makes: one name among every workdir of every config.
func BenchmarkLookupWorkdirLink(b *testing.B) {
	for _, s := range treeSizes {
		b.Run(fmt.Sprintf("workdirs=%d", s.configs*s.perConfig), func(b *testing.B) {
			t, st := benchTree(s.configs, s.perConfig)
			d := resolve(t, st, "workdirs").(lister)
			name := fmt.Sprintf("fedora-%02d-x86_64.w%03d", s.configs/2, s.perConfig/2)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				kids, _ := d.list(st)
				found := false
				for _, k := range kids {
					if k.b().name == name {
						found = true
						break
					}
				}
				if !found {
					b.Fatal("not found")
				}
			}
		})
	}
}

// BenchmarkGetattrInfo is a stat of a workdir's info file: its size comes
// from rendering it.
func BenchmarkGetattrInfo(b *testing.B) {
	t, st := benchTree(10, 20)
	n := resolve(t, st, "pools/mockbuild/configs/fedora-05-x86_64/snapshots/postinit/w010/.info")
	if n == nil {
		b.Fatal("not found")
	}
	var a fuse.Attr
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.attr(n, st, &a)
	}
	if a.Size == 0 {
		b.Fatal("empty info")
	}
}

// BenchmarkReadStats renders a pool's stats file, as each read does.
func BenchmarkReadStats(b *testing.B) {
	t, st := benchTree(10, 20)
	f := resolve(t, st, "pools/mockbuild/stats").(contenter)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if data, _, ok := f.content(st); !ok || len(data) == 0 {
			b.Fatal("no stats")
		}
	}
}

// BenchmarkFlatten is the invalidator's pass over the whole tree, run
// once per new State.
func BenchmarkFlatten(b *testing.B) {
	for _, s := range treeSizes {
		b.Run(fmt.Sprintf("workdirs=%d", s.configs*s.perConfig), func(b *testing.B) {
			t, st := benchTree(s.configs, s.perConfig)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(t.flatten(st)) == 0 {
					b.Fatal("empty")
				}
			}
		})
	}
}

func benchStats() lvm.Stats {
	return lvm.Stats{Backend: "file", Pool: "mockbuild", SizeBytes: 20 << 30, UsedBytes: 5 << 30, FreeBytes: 15 << 30,
		DataPercent: 25.5, MetadataPercent: 3.25, MetadataLabel: "inodes", ThinVolumes: 210, Configs: 10,
		Snapshots: 10, Workdirs: 200, WarnPercent: 75, RefusePercent: 90, Status: lvm.StatusOK,
		Updated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func BenchmarkStatsText(b *testing.B) {
	s := benchStats()
	for i := 0; i < b.N; i++ {
		if len(StatsText(s)) == 0 {
			b.Fatal("empty")
		}
	}
}

func BenchmarkStatsJSON(b *testing.B) {
	s := benchStats()
	for i := 0; i < b.N; i++ {
		if len(StatsJSON(s)) == 0 {
			b.Fatal("empty")
		}
	}
}
