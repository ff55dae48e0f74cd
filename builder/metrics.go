package builder

import (
	"sort"

	"github.com/thinroot/thinroot/metrics"
)

// observe tells the metrics of a build that has just ended: its state and
// time, its bootstrap's and workdir's times (from its phases), its
// cgroup's usage and its builddep rounds.
func (b *Builder) observe(rec Build) {
	m := b.opts.Metrics
	if m == nil {
		return
	}
	cfg := rec.Request.Config
	var took = rec.Finished.Sub(rec.Started)
	if rec.Started.IsZero() {
		took = 0
	}
	var u *metrics.Usage
	if rec.Usage != nil {
		u = &metrics.Usage{CPUSeconds: rec.Usage.CPUSeconds, MemoryPeak: rec.Usage.MemoryPeak, OOMKills: rec.Usage.OOMKills}
	}
	m.BuildFinished(cfg, rec.State, took, u)
	for i := 0; i+1 < len(rec.Phases); i++ {
		d := rec.Phases[i+1].At.Sub(rec.Phases[i].At)
		switch rec.Phases[i].State {
		case StateBootstrapping:
			m.Bootstrap(cfg, d)
		case StateCreatingWorkdir:
			if rec.Phases[i+1].State == StateBuilding {
				m.WorkdirCreated(d)
			}
		}
	}
	if rec.RPM != nil {
		for _, r := range rec.RPM.Rounds {
			m.Builddep(cfg, r.Hit)
		}
	}
}

// MetricsState is the builder's state for the metrics' gauges: builds by
// config and state, queued, running.
func (b *Builder) MetricsState() metrics.Builds {
	b.mu.Lock()
	defer b.mu.Unlock()
	type key struct{ config, state string }
	n := map[key]int{}
	out := metrics.Builds{Jobs: b.opts.Jobs}
	for _, e := range b.builds {
		n[key{e.b.Request.Config, e.b.State}]++
		switch {
		case e.b.State == StateQueued:
			out.Queued++
		case !Final(e.b.State):
			out.Running++
		}
	}
	for k, v := range n {
		out.Counts = append(out.Counts, metrics.BuildCount{Config: k.config, State: k.state, N: v})
	}
	sort.Slice(out.Counts, func(i, j int) bool {
		a, c := out.Counts[i], out.Counts[j]
		return a.Config < c.Config || a.Config == c.Config && a.State < c.State
	})
	return out
}
