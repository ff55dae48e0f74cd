package builder

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/thinroot/thinroot/internal/cgroup"
)

// Limits are a build's resource limits (cgroup.Limits): memory_max in
// bytes, pids_max, cpus.
type Limits = cgroup.Limits

// Usage is what a build's cgroup used: peak memory, CPU seconds, peak
// number of processes, and how many were killed or refused at a limit.
type Usage = cgroup.Usage

// limitsFor returns a build's limits: the daemon's defaults, then the
// config's, then the request's. A caller other than root may lower the
// host's limits, never raise or lift them.
func (b *Builder) limitsFor(info ConfigInfo, req Request, owner int) (Limits, error) {
	base := b.opts.Limits.Over(info.Limits)
	if err := req.Limits.Check(); err != nil {
		return Limits{}, err
	}
	if owner != 0 {
		over := func(name string, want, have float64, show func(float64) string) error {
			if have > 0 && want > have {
				return fmt.Errorf("%s %s is over this host's limit of %s (only root may raise it)", name, show(want), show(have))
			}
			return nil
		}
		bytes := func(v float64) string { return humanize.IBytes(uint64(v)) }
		num := func(v float64) string { return fmt.Sprint(v) }
		for _, err := range []error{
			over("memory_max", float64(req.Limits.MemoryMax), float64(base.MemoryMax), bytes),
			over("pids_max", float64(req.Limits.PidsMax), float64(base.PidsMax), num),
			over("cpus", req.Limits.CPUs, base.CPUs, num),
		} {
			if err != nil {
				return Limits{}, err
			}
		}
	}
	return base.Over(req.Limits), nil
}

// buildGroup is a build's cgroup, from the start of its run to its end.
type buildGroup struct {
	g     *cgroup.Group
	usage *Usage
}

// newGroup makes the build's cgroup. Without cgroups on this host a
// build without limits runs as before; one with limits is refused.
func (b *Builder) newGroup(id string, l Limits) (*buildGroup, error) {
	if b.opts.Cgroups == nil {
		if !l.IsZero() {
			return nil, fmt.Errorf("the build has limits (%s) but this daemon has no cgroups to enforce them (its log says why at start)", limitsText(l))
		}
		return &buildGroup{}, nil
	}
	g, err := b.opts.Cgroups.New("build-"+id, l)
	if err != nil {
		return nil, fmt.Errorf("%w (limits %s)", err, limitsText(l))
	}
	return &buildGroup{g: g}, nil
}

// context makes ctx's sandboxed commands and bootstraps join the group.
func (bg *buildGroup) context(ctx context.Context) context.Context {
	if bg.g == nil {
		return ctx
	}
	return cgroup.WithGroup(ctx, bg.g)
}

// close kills what is left in the group, reads its usage and removes it;
// it returns the usage (nil without a group). Later calls return the
// same.
func (bg *buildGroup) close(b *Builder, id string) *Usage {
	if bg.g == nil || bg.usage != nil {
		return bg.usage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bg.g.Kill(ctx); err != nil {
		b.log.Error("kill the build's cgroup", "build", id, "err", err)
	}
	u := bg.g.Usage()
	bg.usage = &u
	if err := bg.g.Remove(ctx); err != nil {
		b.log.Error("remove the build's cgroup", "build", id, "err", err)
	}
	return bg.usage
}

// oomText says a build was killed for memory, if it was.
func oomText(l Limits, u *Usage) string {
	if u == nil || u.OOMKills == 0 {
		return ""
	}
	return fmt.Sprintf("out of memory (limit %s, peak %s)", humanize.IBytes(uint64(l.MemoryMax)), humanize.IBytes(uint64(u.MemoryPeak)))
}

func limitsText(l Limits) string {
	s := ""
	add := func(k, v string) {
		if s != "" {
			s += ", "
		}
		s += k + " " + v
	}
	if l.MemoryMax > 0 {
		add("memory_max", humanize.IBytes(uint64(l.MemoryMax)))
	}
	if l.PidsMax > 0 {
		add("pids_max", fmt.Sprint(l.PidsMax))
	}
	if l.CPUs > 0 {
		add("cpus", fmt.Sprint(l.CPUs))
	}
	if s == "" {
		return "none"
	}
	return s
}

// sweepGroups removes the cgroups a killed daemon left: those of builds
// that are final now (New marked them interrupted) or have no record.
// A build another live daemon runs keeps its group.
func (b *Builder) sweepGroups() {
	if b.opts.Cgroups == nil {
		return
	}
	for _, name := range b.opts.Cgroups.Groups() {
		id, ok := strings.CutPrefix(name, "build-")
		if !ok {
			continue
		}
		if e := b.builds[id]; e != nil && !Final(e.b.State) {
			continue
		}
		g, err := b.opts.Cgroups.Load(name)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = g.Remove(ctx)
			cancel()
		}
		if err != nil {
			b.log.Warn("remove the cgroup a killed daemon left", "cgroup", name, "err", err)
			continue
		}
		b.log.Info("removed the cgroup a killed daemon left", "cgroup", name)
	}
}
