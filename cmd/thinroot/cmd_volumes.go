package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/internal/size"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvm2"
)

var (
	argCfg  = arg{name: "CONFIG", kind: argConfig}
	argSnap = arg{name: "NAME", kind: argSnapshot}
	argEx   = arg{name: "EXT", kind: argExt}
	argPl   = arg{name: "POOL", kind: argPool}
)

var cmdInit = &command{
	name: "init", group: "buildroots", args: []arg{argCfg}, tail: "BOOTSTRAP ARGV...",
	summary: "bootstrap a config once and take its postinit snapshot",
	help: "Creates the pool if needed, a base volume, mkfs, mounts it, runs the bootstrap with ROOT set to its mount point, " +
		"unmounts it and snapshots postinit. When another process (thinroot or mock) bootstraps the same config, init waits " +
		"for it on mock's init lock and uses its postinit. A failed bootstrap publishes nothing; the next init starts over. " +
		"The phases and their times go to standard error, the bootstrap's output after them.",
	mock: "mock -r CONFIG --init (with the lvm_root plugin)",
	uses: useConfig | useUniqueExt | useAdHoc | useThresholds,
	run:  runInit,
}

var cmdSnapshot = &command{
	name: "snapshot", group: "buildroots", args: []arg{argCfg, {name: "NAME", kind: argOther}},
	summary: "snapshot the workdir of the config's unique-ext as NAME and make NAME current",
	help:    "The workdir is the one of --uniqueext (default: the config's unique-ext, head unless the config says).",
	mock:    "mock -r CONFIG [--uniqueext EXT] --snapshot NAME",
	uses:    useConfig | useUniqueExt | useAdHoc,
	run:     runSnapshot,
}

var cmdRollbackTo = &command{
	name: "rollback-to", group: "buildroots", args: []arg{argCfg, argSnap},
	summary: "make NAME current and remove the workdir of the config's unique-ext",
	help:    "The next workdir of that unique-ext is cloned from NAME.",
	mock:    "mock -r CONFIG [--uniqueext EXT] --rollback-to NAME",
	uses:    useConfig | useUniqueExt | useAdHoc,
	run:     runRollbackTo,
}

var cmdListSnapshots = &command{
	name: "list-snapshots", group: "buildroots", args: []arg{argCfg},
	summary: "list a config's snapshots, the current one marked with *",
	help:    "The text form is mock's; --json prints the snapshots as the tree's .info.json files show them, with current set on the current one of the unique-ext.",
	mock:    "mock -r CONFIG [--uniqueext EXT] --list-snapshots",
	uses:    useConfig | useUniqueExt | useAdHoc | useJSON,
	run:     runListSnapshots,
}

var cmdRemoveSnapshot = &command{
	name: "remove-snapshot", group: "buildroots", args: []arg{argCfg, argSnap},
	summary: "remove a snapshot (not postinit, not one with workdirs)",
	mock:    "mock -r CONFIG --remove-snapshot NAME",
	uses:    useConfig | useAdHoc,
	run:     runRemoveSnapshot,
}

var cmdScrub = &command{
	name: "scrub", group: "buildroots", args: []arg{argCfg},
	summary: "remove every volume of a config, and its pool if nothing else is in it",
	help:    "Workdirs are unmounted lazily. Refused while a build uses a workdir or mock holds the config.",
	mock:    "mock -r CONFIG --scrub=lvm",
	uses:    useConfig | useAdHoc,
	run:     runScrub,
}

var cmdWorkdirCreate = &command{
	name: "workdir create", group: "workdir", args: []arg{argCfg, argEx},
	summary: "clone a snapshot into the workdir of unique-ext EXT and mount it",
	help: "The snapshot is --snapshot, else EXT's current one. The workdir is mounted at <basedir>/<root>-<EXT>/root " +
		"(<basedir>/<root>/root for head), whose path is printed; the command returns once it can be entered with chroot.",
	mock: "mock -r CONFIG --uniqueext EXT (mounting the head volume)",
	uses: useConfig | useAdHoc | useJSON,
	flags: func(fs *pflag.FlagSet) {
		fs.String("snapshot", "", "the snapshot to clone (default: EXT's current one)")
	},
	run: runWorkdirCreate,
}

var cmdWorkdirRemove = &command{
	name: "workdir remove", group: "workdir", args: []arg{argCfg, argEx},
	summary: "unmount and remove a workdir",
	help:    "Refused (busy) while a build or a process uses it.",
	mock:    "mock -r CONFIG --uniqueext EXT --clean",
	uses:    useConfig | useAdHoc,
	run:     runWorkdirRemove,
}

var cmdWorkdirList = &command{
	name: "workdir list", group: "workdir", args: []arg{{name: "CONFIG", kind: argConfig, optional: true}},
	summary: "list workdirs, of every config or of CONFIG",
	uses:    useConfig | useAdHoc | useJSON,
	run:     runWorkdirList,
}

var cmdPoolCreate = &command{
	name: "pool create", group: "pool", args: []arg{{name: "POOL", kind: argOther}},
	summary: "create a thin pool",
	help: "The file backend makes a sparse XFS image with reflink under the state directory and loop-mounts it, or adopts " +
		"--pool-dir. The lvm2 backend makes a thin-pool LV in --volume-group. init also makes a config's pool when it is missing.",
	uses: useThresholds,
	flags: func(fs *pflag.FlagSet) {
		fs.Var(newSize("20G"), "size", "size of the pool (file backend: of its sparse image)")
		fs.String("pool-dir", "", "use this existing directory (XFS with reflink, or btrfs) instead of an image")
		fs.Var(newEnum(file.Kind, backends), "backend", "backend: file, btrfs or lvm2")
		fs.String("volume-group", "", "the volume group of an lvm2 pool (needed with --backend lvm2)")
		fs.Var(newSize(""), "metadata-size", "metadata size of an lvm2 pool (default: lvm2's)")
	},
	run: runPoolCreate,
}

var cmdPoolList = &command{
	name: "pool list", group: "pool",
	summary: "list thin pools with their usage",
	uses:    useJSON,
	run:     runPoolList,
}

var cmdPoolStats = &command{
	name: "pool stats", group: "pool", args: []arg{argPl},
	summary: "print a pool's figures, as the tree's stats files",
	uses:    useJSON,
	run:     runPoolStats,
}

var cmdPoolRemove = &command{
	name: "pool remove", group: "pool", args: []arg{argPl},
	summary: "remove a thin pool that holds no volume",
	run:     runPoolRemove,
}

func runPoolCreate(ctx context.Context, a *app, args []string) error {
	name := args[0]
	be, vg := getString(a.flags, "backend"), getString(a.flags, "volume-group")
	if be == lvm2.Kind {
		if vg == "" {
			return usageErr("--backend lvm2 needs --volume-group VG: the volume group to make the pool in")
		}
	} else if vg != "" || changed(a.flags, "metadata-size") {
		return usageErr("--volume-group and --metadata-size are for --backend lvm2")
	}
	bs, err := backend.SpecFor(be, backendOptions(vg))
	if err != nil {
		return usageErr("--backend %s: %v", be, err)
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	spec := backend.PoolSpec{Name: name, Size: getSize(a.flags, "size"), MetadataSize: getSize(a.flags, "metadata-size"),
		Directory: getString(a.flags, "pool-dir"), WarnPercent: getPercent(a.flags, "warn-percent"), RefusePercent: getPercent(a.flags, "refuse-percent")}
	if err := m.CreatePool(ctx, bs, spec); err != nil {
		if errors.Is(err, lvm.ErrExists) {
			return withHint(err, exitVolume, "pool list shows the pools")
		}
		return err
	}
	if st := m.State().Pool(name); st != nil {
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
	if a.jsonOut() {
		out := []lvm.Stats{}
		for _, p := range st.Pools {
			out = append(out, fsview.PoolStats(p.Stats))
		}
		return writeJSON(a.stdout, out)
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

// pool finds a pool by name, saying which exist when it does not.
func (a *app) pool(m *lvm.Manager, name string) (*lvm.PoolState, error) {
	if p := m.State().Pool(name); p != nil {
		return p, nil
	}
	var names []string
	for _, p := range m.State().Pools {
		names = append(names, p.Name)
	}
	hint := "there are no pools in " + a.g.stateDir + " (init or pool create makes one)"
	if len(names) > 0 {
		hint = didYouMean(name, names, "the pools are "+andList(names))
	}
	return nil, &cliError{code: exitVolume, msg: fmt.Sprintf("no pool %q", name), hint: hint, err: lvm.ErrNotFound}
}

func runPoolStats(ctx context.Context, a *app, args []string) error {
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	p, err := a.pool(m, args[0])
	if err != nil {
		return err
	}
	s := fsview.PoolStats(p.Stats)
	if a.jsonOut() {
		_, err = a.stdout.Write(fsview.StatsJSON(s))
		return err
	}
	_, err = fmt.Fprint(a.stdout, fsview.StatsText(s))
	return err
}

func runPoolRemove(ctx context.Context, a *app, args []string) error {
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	if _, err := a.pool(m, args[0]); err != nil {
		return err
	}
	if err := m.RemovePool(ctx, args[0]); err != nil {
		if errors.Is(err, lvm.ErrNotEmpty) || errors.Is(err, lvm.ErrBusy) {
			return withHint(err, 0, "scrub the configs in it first (thinroot workdir list and list-snapshots show what is there)")
		}
		return err
	}
	printf(a.stdout, "removed pool %s\n", args[0])
	return nil
}

func runInit(ctx context.Context, a *app, args []string) error {
	m, c, err := a.configManager(ctx, args[0], a.tail, true)
	if err != nil {
		return err
	}
	p := newProgress(a.stderr)
	p.phase("preparing the pool (%s)", c.Pool)
	// The RPM bootstrap reports why it failed (the missing packages, the
	// repository) through its output; the catcher keeps that for the exit.
	cat := catchBootstrap(a.stderr)
	did, err := m.InitWatch(ctx, c.Root, cat, func(phase string) {
		switch phase {
		case lvm.PhaseWaitingInit:
			p.phase("waiting for the init lock (another process is bootstrapping %s)", c.Root)
		case lvm.PhaseBootstrapping:
			p.phase("bootstrapping %s: %s", c.Root, joinArgs(c.Bootstrap))
		}
	})
	if err != nil {
		p.phase("failed after %s", fmtDuration(p.elapsed()))
		if err := cat.Err(err); err != nil {
			if code, ok := bootstrapExit(err); ok {
				return &cliError{code: code, err: err, msg: fmt.Sprintf("the bootstrap of %s failed: %v", c.Root, err),
					hint: "nothing was kept: fix the packages or repositories named and run init again"}
			}
		}
		return initErr(c, err)
	}
	if did {
		p.done("took %s", fmtDuration(p.elapsed()))
		printf(a.stdout, "initialized %s: snapshot %s in pool %s\n", c.Root, lvm.PostInit, c.Pool)
	} else {
		p.done("nothing to do")
		printf(a.stdout, "%s is already initialized\n", c.Root)
	}
	return nil
}

// initErr classifies a failed init: a bootstrap command that failed is
// exit 30 (mock's package-manager failure), the rest is the volumes'.
func initErr(c *lvm.Config, err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && strings.Contains(err.Error(), ": bootstrap: ") {
		return &cliError{code: exitBootstrap, err: err, msg: fmt.Sprintf("the bootstrap of %s failed (%s); its output is above", c.Root, ee),
			hint: "nothing was kept: fix the bootstrap (" + joinArgs(c.Bootstrap) + ") and run init again"}
	}
	if errors.Is(err, lvm.ErrPoolFull) {
		return withHint(err, exitVolume, "thinroot pool stats "+c.Pool+" shows its figures")
	}
	return err
}

// configVerb runs a verb of the form "CONFIG NAME...": it resolves the
// config and its Manager and hands op the remaining arguments.
func configVerb(ctx context.Context, a *app, args []string, op func(m *lvm.Manager, c *lvm.Config, rest []string) error) error {
	m, c, err := a.configManager(ctx, args[0], nil, false)
	if err != nil {
		return err
	}
	if err := op(m, c, args[1:]); err != nil {
		if errors.Is(err, lvm.ErrNotReady) {
			return withHint(err, exitVolume, "run `thinroot init "+c.Root+"` first")
		}
		return err
	}
	return nil
}

// snapshotNames lists a config's snapshots, for hints.
func snapshotNames(m *lvm.Manager, root string) []string {
	var out []string
	if _, cs := m.State().Config(root); cs != nil {
		for _, s := range cs.Snapshots {
			out = append(out, s.Name)
		}
	}
	return out
}

// noSnapshot says which snapshots there are when one is missing.
func noSnapshot(m *lvm.Manager, root, name string, err error) error {
	names := snapshotNames(m, root)
	hint := "it has no snapshots (thinroot init " + root + " makes postinit)"
	if len(names) > 0 {
		hint = didYouMean(name, names, "it has "+andList(names))
	}
	return &cliError{code: exitVolume, msg: fmt.Sprintf("config %s has no snapshot %q", root, name), hint: hint, err: err}
}

func runSnapshot(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		err := m.Snapshot(ctx, c.Root, c.UniqueExt, r[0])
		switch {
		case err == nil:
		case errors.Is(err, lvm.ErrNotFound) && findWorkdir(m, c.Root, c.UniqueExt) == nil:
			return &cliError{code: exitVolume, err: err,
				msg:  fmt.Sprintf("config %s has no workdir for unique-ext %s to snapshot", c.Root, c.UniqueExt),
				hint: workdirHint(m, c)}
		case errors.Is(err, lvm.ErrExists):
			return withHint(err, exitVolume, "choose another name, or remove the old one first (thinroot remove-snapshot "+c.Root+" "+r[0]+")")
		default:
			return err
		}
		printf(a.stdout, "created snapshot %s of %s.%s\n", r[0], c.Root, c.UniqueExt)
		return nil
	})
}

func findWorkdir(m *lvm.Manager, root, ext string) *lvm.WorkdirState {
	if _, cs := m.State().Config(root); cs != nil {
		return cs.Workdir(ext)
	}
	return nil
}

// workdirHint says how to name a workdir that exists, or make one.
func workdirHint(m *lvm.Manager, c *lvm.Config) string {
	var exts []string
	if _, cs := m.State().Config(c.Root); cs != nil {
		for _, w := range cs.Workdirs {
			exts = append(exts, w.Ext)
		}
	}
	if len(exts) > 0 {
		return fmt.Sprintf("name the workdir with --uniqueext (it has %s), or make one with thinroot workdir create %s %s", andList(exts), c.Root, c.UniqueExt)
	}
	return fmt.Sprintf("it has no workdirs: make one with thinroot workdir create %s %s, or name another with --uniqueext", c.Root, c.UniqueExt)
}

func runRollbackTo(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		if err := m.RollbackTo(ctx, c.Root, r[0]); err != nil {
			if errors.Is(err, lvm.ErrNotFound) && !contains(snapshotNames(m, c.Root), r[0]) {
				return noSnapshot(m, c.Root, r[0], err)
			}
			return err
		}
		printf(a.stdout, "rolled back %s to %s\n", c.Root, r[0])
		return nil
	})
}

func contains(ss []string, s string) bool { return oneOf(s, ss) }

// snapshotJSON is a snapshot as list-snapshots --json prints it: the
// tree's .info.json object, and whether it is the current one.
type snapshotJSON struct {
	fsview.SnapshotInfo
	Current bool `json:"current"`
}

func runListSnapshots(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, _ []string) error {
		_, cs := m.State().Config(c.Root)
		cur := ""
		if cs != nil && len(cs.Snapshots) > 0 {
			cur, _ = m.Current(c.Root, c.UniqueExt)
		}
		if a.jsonOut() {
			out := []snapshotJSON{}
			if cs != nil {
				for i := range cs.Snapshots {
					s := &cs.Snapshots[i]
					out = append(out, snapshotJSON{fsview.NewSnapshotInfo(c.Root, s), s.Name == cur})
				}
			}
			return writeJSON(a.stdout, out)
		}
		// mock's format: a heading, then "* name" for the current snapshot
		// of the config's unique-ext and "  name" for the others.
		printf(a.stdout, "Snapshots for %s:\n", c.Root)
		if cs == nil {
			return nil
		}
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
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		name := r[0]
		if name == lvm.PostInit {
			// Checked here to say why; the Manager refuses it too.
			return &cliError{code: exitVolume, err: lvm.ErrNotAllowed,
				msg:  fmt.Sprintf("will not remove %s of %s: it is the config's bootstrapped root, which every rollback and every new workdir can fall back to (mock refuses it too)", lvm.PostInit, c.Root),
				hint: "thinroot scrub " + c.Root + " removes all of the config's volumes, postinit included"}
		}
		err := m.RemoveSnapshot(ctx, c.Root, name)
		switch {
		case err == nil:
		case errors.Is(err, lvm.ErrNotFound) && !contains(snapshotNames(m, c.Root), name):
			return noSnapshot(m, c.Root, name, err)
		case errors.Is(err, lvm.ErrNotEmpty):
			return withHint(err, exitVolume, "remove those workdirs first (thinroot workdir remove "+c.Root+" EXT)")
		default:
			return err
		}
		printf(a.stdout, "removed snapshot %s of %s\n", name, c.Root)
		return nil
	})
}

func runScrub(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, _ []string) error {
		if err := m.Scrub(ctx, c.Root); err != nil {
			if errors.Is(err, lvm.ErrBusy) {
				return withHint(err, exitBusy, "wait for it to end (thinroot builds shows the builds), then scrub again")
			}
			return err
		}
		printf(a.stdout, "scrubbed %s\n", c.Root)
		return nil
	})
}

func runWorkdirCreate(ctx context.Context, a *app, args []string) error {
	snap := getString(a.flags, "snapshot")
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		w, err := m.CreateWorkdir(ctx, c.Root, snap, r[0])
		switch {
		case err == nil:
		case errors.Is(err, lvm.ErrExists) && findWorkdir(m, c.Root, r[0]) != nil:
			return withHint(err, exitVolume, fmt.Sprintf("use it, or remove it first (thinroot workdir remove %s %s)", c.Root, r[0]))
		case errors.Is(err, lvm.ErrNotFound) && snap != "" && !contains(snapshotNames(m, c.Root), snap):
			return noSnapshot(m, c.Root, snap, err)
		case errors.Is(err, lvm.ErrPoolFull):
			return withHint(err, exitVolume, "thinroot pool stats "+c.Pool+" shows its figures")
		default:
			return err
		}
		if a.jsonOut() {
			return writeJSON(a.stdout, fsview.NewWorkdirInfo(w))
		}
		printf(a.stdout, "%s\n", w.Mountpoint)
		return nil
	})
}

func runWorkdirRemove(ctx context.Context, a *app, args []string) error {
	return configVerb(ctx, a, args, func(m *lvm.Manager, c *lvm.Config, r []string) error {
		if err := m.RemoveWorkdir(ctx, c.Root, r[0]); err != nil {
			switch {
			case errors.Is(err, lvm.ErrNotFound) && findWorkdir(m, c.Root, r[0]) == nil:
				return &cliError{code: exitVolume, err: err, msg: fmt.Sprintf("config %s has no workdir %s", c.Root, r[0]),
					hint: "thinroot workdir list " + c.Root + " lists its workdirs"}
			case errors.Is(err, lvm.ErrBusy):
				return withHint(err, exitBusy, "end what uses it (a build: thinroot cancel; a shell inside it: leave it) and remove it again")
			}
			return err
		}
		printf(a.stdout, "removed workdir %s.%s\n", c.Root, r[0])
		return nil
	})
}

func runWorkdirList(ctx context.Context, a *app, args []string) error {
	var m *lvm.Manager
	var err error
	root := ""
	if len(args) == 1 {
		var c *lvm.Config
		m, c, err = a.configManager(ctx, args[0], nil, false)
		if c != nil {
			root = c.Root
		}
	} else {
		if given := a.adHocGiven(); len(given) > 0 {
			return usageErr("--%s defines an ad hoc config, but no CONFIG is given", given[0])
		}
		m, err = a.manager(ctx)
	}
	if err != nil {
		return err
	}
	out := []fsview.WorkdirInfo{}
	for _, p := range m.State().Pools {
		for _, cs := range p.Configs {
			if root != "" && cs.Root != root {
				continue
			}
			for i := range cs.Workdirs {
				out = append(out, fsview.NewWorkdirInfo(&cs.Workdirs[i]))
			}
		}
	}
	if a.jsonOut() {
		return writeJSON(a.stdout, out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONFIG\tEXT\tSNAPSHOT\tSTATE\tHELD BY\tCREATED\tPATH")
	for _, w := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.Config, w.Ext, dash(w.Snapshot), w.State, dash(w.HeldBy), fmtTime(w.Created), w.Mountpoint)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
