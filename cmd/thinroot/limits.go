package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/mockcfg"
)

// limitFlags are the resource limits of a build (thinroot build) or the
// host's defaults (thinroot serve), by the names of the config's keys;
// note ends each flag's usage.
func limitFlags(what, note string) func(fs *pflag.FlagSet) {
	return func(fs *pflag.FlagSet) {
		fs.Var(&limitSize{}, "memory-max", "memory limit of "+what+" (2G, 512M); over it the build fails: out of memory"+note)
		fs.Var(&countValue{min: 1, def: "no limit"}, "pids-max", "most processes and threads of "+what+" at once"+note)
		fs.Var(&cpusValue{}, "cpus", "CPU time of "+what+" per second, in CPUs (1.5)"+note)
	}
}

// getLimits reads the limit flags; unset ones are zero.
func getLimits(fs *pflag.FlagSet) builder.Limits {
	var l builder.Limits
	if f := fs.Lookup("memory-max"); f != nil {
		l.MemoryMax = f.Value.(*limitSize).n
	}
	l.PidsMax = int64(getCount(fs, "pids-max"))
	if f := fs.Lookup("cpus"); f != nil {
		l.CPUs = f.Value.(*cpusValue).v
	}
	return l
}

// limitSize is a memory size like 2G (G is GiB, as everywhere in thinroot).
type limitSize struct{ sizeValue }

func (v *limitSize) Set(s string) error {
	if err := v.sizeValue.Set(s); err != nil {
		return err
	}
	if v.n < 4<<20 {
		return fmt.Errorf("want at least 4M: nothing starts in less")
	}
	return nil
}

// cpusValue is a number of CPUs above zero, such as 1.5.
type cpusValue struct{ v float64 }

func (c *cpusValue) String() string {
	if c.v == 0 {
		return ""
	}
	return fmtNum(c.v)
}
func (c *cpusValue) Type() string { return "CPUS" }
func (c *cpusValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0.01 {
		return fmt.Errorf("want a number of CPUs of 0.01 or more, such as 1.5")
	}
	c.v = f
	return nil
}

// configLimits reads memory_max, pids_max and cpus under
// config_opts['thinroot'].
func configLimits(extra map[string]any) (builder.Limits, error) {
	var l builder.Limits
	if v, ok := extra["memory_max"]; ok {
		n, err := mockcfg.ParseSize(fmt.Sprint(v))
		if err != nil {
			return l, fmt.Errorf("thinroot.memory_max: %w", err)
		}
		l.MemoryMax = n
	}
	if v, ok := extra["pids_max"]; ok {
		n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
		if err != nil {
			return l, fmt.Errorf("thinroot.pids_max: %v is not a whole number", v)
		}
		l.PidsMax = n
	}
	if v, ok := extra["cpus"]; ok {
		f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
		if err != nil {
			return l, fmt.Errorf("thinroot.cpus: %v is not a number of CPUs", v)
		}
		l.CPUs = f
	}
	if err := l.Check(); err != nil {
		return l, fmt.Errorf("thinroot: %w", err)
	}
	return l, nil
}

// shellGroup puts a shell, chroot or install in a cgroup of its own with
// the config's limits, killed whole when it ends. Without cgroups it
// runs without one, unless the config sets limits. On cgroup v2 it makes
// one only for limits: there the caller's own group (a login session's
// scope) would have to hand out controllers, moving its processes.
func shellGroup(ctx context.Context, l builder.Limits, log *slog.Logger) (context.Context, func(), error) {
	if l.IsZero() && cgroup.Unified() {
		return ctx, func() {}, nil
	}
	m, err := cgroup.Open(envOr("THINROOT_CGROUP_PARENT", "thinroot"))
	if err != nil {
		if !l.IsZero() {
			return ctx, nil, fmt.Errorf("the config sets limits (memory_max, pids_max, cpus) but %w", err)
		}
		log.Debug("no cgroup for the shell", "err", err)
		return ctx, func() {}, nil
	}
	sweepShellGroups(m, log)
	g, err := m.New(fmt.Sprintf("shell-%d", os.Getpid()), l)
	if err != nil {
		return ctx, nil, err
	}
	return cgroup.WithGroup(ctx, g), func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := g.Remove(rctx); err != nil {
			log.Warn("remove the shell's cgroup", "err", err)
		}
		// The parent goes too when nothing else (a daemon's builds,
		// another shell) is in it.
		m.Remove()
	}, nil
}

// limitsLine shows limits as the config's keys: memory_max 2.0 GiB, ...
func limitsLine(l builder.Limits) string {
	var parts []string
	if l.MemoryMax > 0 {
		parts = append(parts, "memory_max "+humanize.IBytes(uint64(l.MemoryMax)))
	}
	if l.PidsMax > 0 {
		parts = append(parts, fmt.Sprintf("pids_max %d", l.PidsMax))
	}
	if l.CPUs > 0 {
		parts = append(parts, "cpus "+fmtNum(l.CPUs))
	}
	return strings.Join(parts, ", ")
}

// sweepShellGroups removes the cgroups of shells whose process is gone
// (killed before it could remove its own).
func sweepShellGroups(m *cgroup.Manager, log *slog.Logger) {
	for _, name := range m.Groups() {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, "shell-"))
		if err != nil || !strings.HasPrefix(name, "shell-") || syscall.Kill(pid, 0) == nil {
			continue
		}
		g, err := m.Load(name)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.Remove(ctx); err != nil {
			log.Warn("remove the cgroup of a shell that is gone", "cgroup", name, "err", err)
		}
		cancel()
	}
}
