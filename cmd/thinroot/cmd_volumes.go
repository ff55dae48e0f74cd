package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/internal/size"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvm2"
)

func init() {
	register(&command{
		name: "pool create", args: "POOL", summary: "create a thin pool",
		flags: func(fs *pflag.FlagSet) {
			fs.String("size", "20G", "size of the pool (file, btrfs: the sparse image)")
			fs.String("pool-dir", "", "use this existing directory instead of an image (file: XFS with reflink or btrfs; btrfs: btrfs)")
			fs.String("backend", file.Kind, "backend: file, btrfs or lvm2")
			fs.String("volume-group", "", "the volume group of an lvm2 pool")
			fs.String("metadata-size", "", "metadata size of an lvm2 pool (default: lvm2's)")
		},
		run: runPoolCreate,
	})
	register(&command{
		name: "pool list", summary: "list thin pools with their usage",
		flags: func(fs *pflag.FlagSet) { fs.Bool("json", false, "print JSON") },
		run:   runPoolList,
	})
	register(&command{
		name: "pool stats", args: "POOL", summary: "print a pool's figures (the tree's stats file)",
		flags: func(fs *pflag.FlagSet) { fs.Bool("json", false, "print the stats.json form") },
		run:   runPoolStats,
	})
	register(&command{
		name: "pool remove", args: "POOL", summary: "remove an empty thin pool",
		run: runPoolRemove,
	})
	register(&command{
		name: "init", args: "CONFIG [-- BOOTSTRAP ARGV...]", summary: "bootstrap a config once and take its postinit snapshot",
		mock: "mock --init (with the lvm_root plugin)", flags: configFlags, run: runInit,
	})
	register(&command{
		name: "snapshot", args: "CONFIG NAME", summary: "snapshot the config's workdir (its unique-ext) as NAME and make it current",
		mock: "mock --snapshot NAME", flags: configFlags, run: runSnapshot,
	})
	register(&command{
		name: "rollback-to", args: "CONFIG NAME", summary: "make NAME current and remove the workdir of the config's unique-ext",
		mock: "mock --rollback-to NAME", flags: configFlags, run: runRollbackTo,
	})
	register(&command{
		name: "list-snapshots", args: "CONFIG", summary: "list a config's snapshots, the current one marked with *",
		mock: "mock --list-snapshots", flags: configFlags, run: runListSnapshots,
	})
	register(&command{
		name: "remove-snapshot", args: "CONFIG NAME", summary: "remove a snapshot (not postinit, not one with workdirs)",
		mock: "mock --remove-snapshot NAME", flags: configFlags, run: runRemoveSnapshot,
	})
	register(&command{
		name: "scrub", args: "CONFIG", summary: "remove every volume of a config, and its pool if nothing else is in it",
		mock: "mock --scrub=lvm", flags: configFlags, run: runScrub,
	})
	register(&command{
		name: "workdir create", args: "CONFIG EXT", summary: "clone a snapshot into a workdir for unique-ext EXT and mount it",
		mock: "mock --uniqueext EXT (mounting the head volume)",
		flags: func(fs *pflag.FlagSet) {
			configFlags(fs)
			fs.String("snapshot", "", "snapshot to clone (default: EXT's current snapshot)")
		},
		run: runWorkdirCreate,
	})
	register(&command{
		name: "workdir remove", args: "CONFIG EXT", summary: "unmount and remove a workdir",
		mock: "mock --uniqueext EXT --clean", flags: configFlags, run: runWorkdirRemove,
	})
	register(&command{
		name: "workdir list", args: "[CONFIG]", summary: "list workdirs",
		flags: func(fs *pflag.FlagSet) {
			configFlags(fs)
			fs.Bool("json", false, "print JSON")
		},
		run: runWorkdirList,
	})
}

func runPoolCreate(ctx context.Context, a *app, args []string) error {
	name, err := oneArg(args, "POOL")
	if err != nil {
		return err
	}
	s, _ := a.flags.GetString("size")
	n, err := size.Parse(s)
	if err != nil {
		return err
	}
	dir, _ := a.flags.GetString("pool-dir")
	be, _ := a.flags.GetString("backend")
	vg, _ := a.flags.GetString("volume-group")
	var meta int64
	if ms, _ := a.flags.GetString("metadata-size"); ms != "" {
		if meta, err = size.Parse(ms); err != nil {
			return err
		}
	}
	if be == lvm2.Kind && vg == "" {
		return usageErr("an lvm2 pool needs --volume-group")
	}
	bs, err := backend.SpecFor(be, backendOptions(vg))
	if err != nil {
		return err
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	spec := backend.PoolSpec{Name: name, Size: n, MetadataSize: meta, Directory: dir, WarnPercent: a.g.warn, RefusePercent: a.g.refuse}
	if err := m.CreatePool(ctx, bs, spec); err != nil {
		return err
	}
	st := m.State().Pool(name)
	if st != nil {
		printf(a.stdout, "created pool %s (%s, %s)\n", name, be, size.Format(st.Stats.SizeBytes))
	}
	return nil
}

func runPoolList(ctx context.Context, a *app, args []string) error {
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	st := m.State()
	if j, _ := a.flags.GetBool("json"); j {
		var out []lvm.Stats
		for _, p := range st.Pools {
			out = append(out, p.Stats)
		}
		return json.NewEncoder(a.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tBACKEND\tSIZE\tUSED\tDATA%\tMETA%\tCONFIGS\tWORKDIRS\tSTATUS")
	for _, p := range st.Pools {
		s := p.Stats
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%.1f\t%d\t%d\t%s\n", p.Name, p.Backend, size.Format(s.SizeBytes),
			size.Format(s.UsedBytes), s.DataPercent, s.MetadataPercent, s.Configs, s.Workdirs, s.Status)
	}
	return tw.Flush()
}

func runPoolStats(ctx context.Context, a *app, args []string) error {
	name, err := oneArg(args, "POOL")
	if err != nil {
		return err
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	p := m.State().Pool(name)
	if p == nil {
		return fmt.Errorf("pool %s: %w", name, lvm.ErrNotFound)
	}
	if j, _ := a.flags.GetBool("json"); j {
		_, err = a.stdout.Write(fsview.StatsJSON(p.Stats))
		return err
	}
	_, err = fmt.Fprint(a.stdout, fsview.StatsText(p.Stats))
	return err
}

func runPoolRemove(ctx context.Context, a *app, args []string) error {
	name, err := oneArg(args, "POOL")
	if err != nil {
		return err
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	if err := m.RemovePool(ctx, name); err != nil {
		return err
	}
	printf(a.stdout, "removed pool %s\n", name)
	return nil
}

func runInit(ctx context.Context, a *app, args []string) error {
	if len(args) < 1 {
		return usageErr("want CONFIG")
	}
	var argv []string
	if dash := a.flags.ArgsLenAtDash(); dash >= 0 {
		if dash != 1 {
			return usageErr("want CONFIG before --")
		}
		argv = args[dash:]
	} else if len(args) > 1 {
		return usageErr("extra arguments %q (put the bootstrap argv after --)", args[1:])
	}
	m, c, err := a.configManager(ctx, args[0], argv)
	if err != nil {
		return err
	}
	did, err := m.Init(ctx, c.Root, a.stderr)
	if err != nil {
		return err
	}
	if did {
		printf(a.stdout, "initialized %s: snapshot %s in pool %s\n", c.Root, lvm.PostInit, c.Pool)
	} else {
		printf(a.stdout, "%s is already initialized\n", c.Root)
	}
	return nil
}

// configVerb runs a verb of the form "CONFIG NAME...": it checks the
// arguments, resolves the config and its Manager, and hands op the
// remaining arguments.
func configVerb(ctx context.Context, a *app, args []string, names []string,
	op func(m *lvm.Manager, c *lvm.Config, rest []string) error) error {
	if len(args) != 1+len(names) {
		return usageErr("want CONFIG %s", strings.Join(names, " "))
	}
	m, c, err := a.configManager(ctx, args[0], nil)
	if err != nil {
		return err
	}
	return op(m, c, args[1:])
}

func runSnapshot(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, []string{"NAME"}, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		if err := m.Snapshot(ctx, c.Root, c.UniqueExt, r[0]); err != nil {
			return err
		}
		printf(a.stdout, "created snapshot %s of %s.%s\n", r[0], c.Root, c.UniqueExt)
		return nil
	})
}

func runRollbackTo(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, []string{"NAME"}, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		if err := m.RollbackTo(ctx, c.Root, r[0]); err != nil {
			return err
		}
		printf(a.stdout, "rolled back %s to %s\n", c.Root, r[0])
		return nil
	})
}

func runListSnapshots(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, nil, func(m *lvm.Manager, c *lvm.Config, _ []string) error {
		// mock's format: a heading, then "* name" for the current snapshot
		// of the config's unique-ext and "  name" for the others.
		printf(a.stdout, "Snapshots for %s:\n", c.Root)
		_, cs := m.State().Config(c.Root)
		if cs == nil {
			return nil
		}
		cur, _ := m.Current(c.Root, c.UniqueExt)
		for _, s := range cs.Snapshots {
			mark := "  "
			if s.Name == cur {
				mark = "* "
			}
			printf(a.stdout, "%s%s\n", mark, s.Name)
		}
		return nil
	})
}

func runRemoveSnapshot(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, []string{"NAME"}, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		if err := m.RemoveSnapshot(ctx, c.Root, r[0]); err != nil {
			return err
		}
		printf(a.stdout, "removed snapshot %s of %s\n", r[0], c.Root)
		return nil
	})
}

func runScrub(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, nil, func(m *lvm.Manager, c *lvm.Config, _ []string) error {
		if err := m.Scrub(ctx, c.Root); err != nil {
			return err
		}
		printf(a.stdout, "scrubbed %s\n", c.Root)
		return nil
	})
}

func runWorkdirCreate(ctx context.Context, a *app, args []string) error {
	snap, _ := a.flags.GetString("snapshot")
	return configVerb(ctx, a, args, []string{"EXT"}, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		w, err := m.CreateWorkdir(ctx, c.Root, snap, r[0])
		if err != nil {
			return err
		}
		printf(a.stdout, "%s\n", w.Mountpoint)
		return nil
	})
}

func runWorkdirRemove(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, []string{"EXT"}, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		if err := m.RemoveWorkdir(ctx, c.Root, r[0]); err != nil {
			return err
		}
		printf(a.stdout, "removed workdir %s.%s\n", c.Root, r[0])
		return nil
	})
}

func runWorkdirList(ctx context.Context, a *app, args []string) error {
	if len(args) > 1 {
		return usageErr("at most one CONFIG")
	}
	var m *lvm.Manager
	var err error
	if len(args) == 1 {
		m, _, err = a.configManager(ctx, args[0], nil)
	} else {
		m, err = a.manager(ctx)
	}
	if err != nil {
		return err
	}
	var out []lvm.WorkdirState
	for _, p := range m.State().Pools {
		for _, cs := range p.Configs {
			if len(args) == 1 && cs.Root != args[0] {
				continue
			}
			out = append(out, cs.Workdirs...)
		}
	}
	if j, _ := a.flags.GetBool("json"); j {
		if out == nil {
			out = []lvm.WorkdirState{}
		}
		return json.NewEncoder(a.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONFIG\tEXT\tSNAPSHOT\tMOUNTED\tCREATED\tPATH")
	for _, w := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", w.Root, w.Ext, w.Snapshot, w.Mounted, fmtTime(w.Created), w.Mountpoint)
	}
	return tw.Flush()
}
