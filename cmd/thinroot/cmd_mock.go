package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/mockcli"
	"github.com/thinroot/thinroot/pkgmgr"
	"github.com/thinroot/thinroot/rpmroot"
	"github.com/thinroot/thinroot/sandbox"
)

// thinroot mock: mock's command line, files and exit statuses, for the
// build farms that run mock on each builder (farm-contract.md). The
// root is a workdir mounted where mock keeps its root,
// <basedir>/<root>[-<ext>]/root, and it stays between calls; --init
// without -n clones it afresh from the config's current snapshot.

var cmdMock = &command{
	name: "mock", group: "builds", raw: true, args: []arg{{name: "MOCK-ARGS", optional: true, repeat: true}},
	summary: "mock's command line, for build farms (kojid, copr-rpmbuild)",
	help: "Takes mock's options and modes as mock does (see thinroot(1), MOCK): --init, --rebuild, --buildsrpm, --chroot, --shell, " +
		"--install, --copyin, --copyout, --scrub, with -r, -n, --resultdir, --uniqueext, --target, -D, --with, --without and the rest. " +
		"The same program runs as mock when it is invoked under that name. Unprivileged members of the group mock run it set-uid root.",
	mock: "mock ARGS...",
	run:  runMock,
}

// mockRun is one invocation.
type mockRun struct {
	a      *app
	o      *mockcli.Options
	caller mockCaller
	lc     loadedConfig
	rc     *rpmroot.Config
	m      *lvm.Manager
	c      *lvm.Config
	ext    string // the volume's unique-ext
	wdir   string // <basedir>/<root>[-<ext>]
	root   string // wdir/root
	// family is set for a root of a config family (family.go): the
	// volume is the workdir ext of the family's config, mounted at
	// volRoot and bound at root.
	family  bool
	volRoot string
	name    string // the config's root, as mock names the root
	result  string // the result directory
	uid     int    // the build user
	gid     int
	binds   [][2]string // the config's bind_mount plugin dirs (host, chroot)
	out     io.Writer   // mock's own output (nothing with -q)
}

func runMock(ctx context.Context, a *app, args []string) error {
	o, err := mockcli.Parse(args)
	if err == nil && !o.Help && !o.Version {
		err = o.Check()
	}
	var me *mockcli.Error
	if errors.As(err, &me) {
		return &cliError{code: me.Code, msg: me.Msg, hint: "thinroot(1), MOCK, lists the options and modes thinroot mock takes"}
	} else if err != nil {
		return err
	}
	switch {
	case o.Help:
		fmt.Fprintln(a.stdout, "usage: mock [options] {--init|--rebuild SRPM|--buildsrpm --spec SPEC [--sources DIR]|--chroot CMD|--shell [CMD]|"+
			"--install PKG...|--copyin SRC... DEST|--copyout SRC... DEST|--scrub WHAT}\nthinroot's mock: see thinroot(1), section MOCK")
		return nil
	case o.Version:
		fmt.Fprintln(a.stdout, versionString())
		return nil
	}
	caller, err := mockPrivilege()
	if err != nil {
		return err
	}
	r := &mockRun{a: a, o: o, caller: caller, out: a.stdout}
	if o.Quiet {
		r.out = io.Discard
	}
	if err := r.setup(ctx); err != nil {
		return err
	}
	held, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer held.Release()
	switch o.Mode {
	case mockcli.ModePrintRoot:
		fmt.Fprintln(a.stdout, r.root)
		return nil
	case mockcli.ModeInit:
		return r.init(ctx)
	case mockcli.ModeClean:
		return r.clean(ctx)
	case mockcli.ModeChroot, mockcli.ModeShell:
		return r.chroot(ctx)
	case mockcli.ModeInstall:
		return r.install(ctx)
	case mockcli.ModeCopyIn, mockcli.ModeCopyOut:
		return r.copy(ctx)
	case mockcli.ModeRebuild, mockcli.ModeBuildSRPM:
		return r.build(ctx)
	}
	return o.Supported()
}

// setup loads the config and works out the paths and the build user.
func (r *mockRun) setup(ctx context.Context) error {
	a, o := r.a, r.o
	if o.ConfigDir != "" {
		a.g.configDir = o.ConfigDir
	}
	cwd, _ := os.Getwd()
	lc, err := a.fileConfig(o.ConfigName(cwd))
	if err != nil {
		return err
	}
	r.lc = lc
	if cfg, err := a.loader().Load(o.ConfigName(cwd)); err == nil {
		r.binds = configBinds(cfg)
	}
	if lc.build.RPM == nil {
		return &cliError{code: exitConfig, msg: fmt.Sprintf("config %s has no package manager thinroot drives (dnf, dnf5 or yum)", lc.vol.Root),
			hint: "thinroot mock builds RPMs; fix " + lc.file}
	}
	rc := *lc.build.RPM
	r.rc = &rc
	r.uid, r.gid = r.caller.uid, r.caller.gid
	if r.uid == 0 {
		r.uid = rc.UID
	}
	if r.gid < 0 {
		r.gid = rc.GID
	}
	rc.UID, rc.GID = r.uid, r.gid
	r.ext = lc.vol.UniqueExt
	if o.UniqueExt != "" {
		// A volume's ext may not hold '.', which separates names in
		// volume names; copr's (a time stamp) does.
		r.ext = strings.ReplaceAll(o.UniqueExt, ".", "_")
	}
	if err := lvm.ValidateExt(lc.vol.Root, r.ext); err != nil {
		return &cliError{code: mockcli.ExitBadCmdline, msg: fmt.Sprintf("--uniqueext %s: %v", o.UniqueExt, err), err: err}
	}
	name := lc.vol.Root
	r.name = name
	if r.family = isFamilyName(o.Root); r.family {
		// The root's volume is a workdir of the family's config, named
		// after the root.
		lc.vol.Root = familyRoot(o.Root, lc.vol, &rc)
		r.lc.build.Root = lc.vol.Root
		// One package cache for the family, not one left per task.
		pm := *rc.PM
		pm.CacheDir = filepath.Join(a.g.cacheDir, lc.vol.Root)
		rc.PM = &pm
		r.ext = strings.ReplaceAll(name, ".", "_")
		if o.UniqueExt != "" {
			r.ext += "-" + strings.ReplaceAll(o.UniqueExt, ".", "_")
		}
		if err := lvm.ValidateExt(lc.vol.Root, r.ext); err != nil {
			return &cliError{code: exitConfig, msg: fmt.Sprintf("root %s: %v", name, err), err: err}
		}
	}
	if r.m, err = a.manager(ctx, lc.vol); err != nil {
		return err
	}
	if r.c, err = r.m.Config(lc.vol.Root); err != nil {
		return err
	}
	r.wdir, r.root = r.c.WorkdirDir(r.ext), r.c.ChrootDir(r.ext)
	r.volRoot = r.root
	if r.family {
		r.wdir = filepath.Join(r.c.Basedir, name)
		if o.UniqueExt != "" {
			r.wdir += "-" + o.UniqueExt
		}
		r.root = filepath.Join(r.wdir, "root")
		r.sweepFamily(ctx)
	}
	r.result = filepath.Join(r.wdir, "result")
	if o.ResultDir != "" {
		r.result = absFrom(cwd, o.ResultDir)
	}
	return nil
}

func absFrom(cwd, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

// lock takes mock's lock of the root, <basedir>/<root>/buildroot.lock:
// exclusive for what removes the root, shared otherwise, waiting for
// another mock on the same root as mock does.
func (r *mockRun) lock(ctx context.Context) (*lock.Held, error) {
	if err := os.MkdirAll(r.wdir, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", r.wdir, err)
	}
	o := r.o
	exclusive := o.Mode == mockcli.ModeInit || o.Mode == mockcli.ModeClean ||
		(o.Mode == mockcli.ModeRebuild || o.Mode == mockcli.ModeBuildSRPM) && !o.NoClean
	h, err := lock.Lock(ctx, filepath.Join(r.wdir, "buildroot.lock"), exclusive, func(lock.Holder) {
		fmt.Fprintf(r.out, "Waiting for the lock of %s (another mock uses this root)\n", r.wdir)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("lock %s: %w", r.wdir, err)
	}
	return h, nil
}

// openLogs opens mock's logs in the result directory, appended to.
func (r *mockRun) openLogs() (*rpmroot.Logs, error) {
	if _, err := os.Stat(r.result); err != nil {
		// mock makes the result directory as the build user.
		if err := os.MkdirAll(r.result, 0o755); err == nil {
			os.Chown(r.result, r.uid, r.gid)
		}
	}
	logs, err := rpmroot.OpenLogs(r.result, r.uid, r.gid, r.rc.Version, r.out)
	if err != nil {
		return nil, &cliError{code: 70, msg: fmt.Sprintf("result directory %s: %v", r.result, err), err: err,
			hint: "give a --resultdir the build user may write"}
	}
	return logs, nil
}

// workdir returns whether the root's workdir exists and is mounted. A
// workdir whose mount point a farm removed (kojid unmounts lazily and
// deletes <basedir>/<root>) is removed here.
func (r *mockRun) workdir(ctx context.Context) (bool, error) {
	_, cs := r.m.State().Config(r.c.Root)
	if cs == nil || cs.Workdir(r.ext) == nil {
		return false, nil
	}
	if ok, _ := mount.IsMountpoint(r.root); ok {
		return true, nil
	}
	if r.family {
		unbind(r.root)
	}
	if err := builder.RemoveWorkdirRetry(ctx, r.m, r.c.Root, r.ext); err != nil {
		return false, fmt.Errorf("remove the workdir %s.%s whose mount %s is gone: %w", r.c.Root, r.ext, r.root, err)
	}
	return false, nil
}

// removeRoot is mock's clean of a root: the workdir goes, and so does
// <basedir>/<root> with what it holds (the default result directory
// too), but the lock file.
func (r *mockRun) removeRoot(ctx context.Context) error {
	if r.family {
		unbind(r.root)
	}
	if _, cs := r.m.State().Config(r.c.Root); cs != nil && cs.Workdir(r.ext) != nil {
		if err := builder.RemoveWorkdirRetry(ctx, r.m, r.c.Root, r.ext); err != nil {
			return fmt.Errorf("remove the root %s: %w", r.root, err)
		}
	}
	if ok, _ := mount.IsMountpoint(r.root); ok {
		return &cliError{code: exitBusy, msg: r.root + " is still mounted", hint: "unmount it (umount " + r.root + ") and run again"}
	}
	if r.family {
		os.RemoveAll(r.c.WorkdirDir(r.ext))
	}
	ents, _ := os.ReadDir(r.wdir)
	for _, e := range ents {
		if e.Name() == "buildroot.lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.wdir, e.Name())); err != nil {
			return fmt.Errorf("clean %s: %w", r.wdir, err)
		}
	}
	return nil
}

// rootWithLogs opens the result logs and makes sure the root is there, as
// the modes that work in an existing root (--chroot, --shell, --install,
// --copyin, --copyout) start.
func (r *mockRun) rootWithLogs(ctx context.Context) (*rpmroot.Logs, error) {
	logs, err := r.openLogs()
	if err != nil {
		return nil, err
	}
	if _, err := r.ensureRoot(ctx, logs); err != nil {
		logs.Close()
		return nil, err
	}
	return logs, nil
}

// ensureRoot makes the root when it is missing: the config's bootstrap
// when it has none yet, then a clone of its current snapshot, with the
// build user and its home. It tells whether it made the workdir.
func (r *mockRun) ensureRoot(ctx context.Context, logs *rpmroot.Logs) (bool, error) {
	ok, err := r.workdir(ctx)
	if err != nil || ok {
		return false, err
	}
	if _, cs := r.m.State().Config(r.c.Root); cs == nil || cs.State != lvm.StateReady {
		logs.Start("chroot init: bootstrap of " + r.c.Root)
		cat := catchBootstrap(logs.Root())
		did, err := r.m.Init(ctx, r.c.Root, cat)
		logs.Finish("chroot init: bootstrap of " + r.c.Root)
		if did && err == nil {
			logs.Info("bootstrapped %s; its snapshot %s serves every root of it", r.c.Root, lvm.PostInit)
		}
		if err := cat.Err(err); err != nil {
			if code, ok := bootstrapExit(err); ok {
				return false, &cliError{code: code, err: err, msg: oneLine(err.Error()), hint: "root.log in " + r.result + " has the package manager's output"}
			}
			return false, err
		}
	}
	// The config's current snapshot (thinroot snapshot and rollback-to
	// set it), not the root's own record: a new root starts from it.
	snap, err := r.m.Current(r.c.Root, r.c.UniqueExt)
	if err != nil {
		snap = ""
	}
	w, err := r.m.CreateWorkdir(ctx, r.c.Root, snap, r.ext)
	if err != nil {
		return false, fmt.Errorf("clone the root of %s: %w", r.c.Root, err)
	}
	logs.Info("root %s cloned from snapshot %s of %s", w.Mountpoint, w.Snapshot, r.c.Root)
	if r.family {
		if err := r.bind(); err != nil {
			return true, err
		}
		logs.Info("root %s bound at %s", w.Mountpoint, r.root)
	}
	if changed, err := r.rc.EnsureUser(ctx, r.root, r.uid, r.gid, logs.Root()); err != nil {
		return true, fmt.Errorf("build user: %w", err)
	} else if changed {
		logs.Info("made the build user %s uid %d gid %d", r.rc.User, r.uid, r.gid)
	}
	macros, err := rpmroot.BuildMacros(r.o.Defines, r.o.With, r.o.Without)
	if err != nil {
		return true, &cliError{code: mockcli.ExitBadCmdline, msg: err.Error(), err: err}
	}
	if err := r.rc.PrepareHome(filepath.Join(r.root, r.rc.Home), r.uid, r.gid, macros, false); err != nil {
		return true, fmt.Errorf("build directories: %w", err)
	}
	if err := rpmroot.ChownTree(filepath.Join(r.root, r.rc.Home), r.uid, r.gid); err != nil {
		return true, err
	}
	return true, nil
}

func (r *mockRun) init(ctx context.Context) error {
	if !r.o.NoClean {
		if err := r.removeRoot(ctx); err != nil {
			return err
		}
	}
	logs, err := r.openLogs()
	if err != nil {
		return err
	}
	defer logs.Close()
	if err := rpmroot.WriteHWInfo(ctx, r.result, r.root, r.rc.PM.CacheDir, r.uid, r.gid); err != nil {
		logs.Info("hw_info: %v", err)
	}
	logs.Start("chroot init")
	_, err = r.ensureRoot(ctx, logs)
	logs.Finish("chroot init")
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "INFO: Results and/or logs in: %s\n", r.result)
	return nil
}

// clean is --clean and --scrub: the root goes; the config's snapshots,
// builddep snapshots and package cache stay, since every root of the
// config shares them (thinroot scrub CONFIG removes them).
func (r *mockRun) clean(ctx context.Context) error {
	what := r.o.Scrub
	if len(what) == 0 {
		what = []string{"chroot"}
	}
	for _, w := range what {
		switch w {
		case "chroot", "all", "lvm", "overlayfs":
			if err := r.removeRoot(ctx); err != nil {
				return err
			}
			os.RemoveAll(r.wdir)
			fmt.Fprintf(r.out, "INFO: scrub %s: removed the root %s\n", w, r.root)
		case "bootstrap":
			// There is no bootstrap chroot; remove one mock left.
			b := filepath.Join(r.c.Basedir, r.name+"-bootstrap")
			if r.o.UniqueExt != "" {
				b += "-" + r.o.UniqueExt
			}
			if ok, _ := mount.IsMountpoint(filepath.Join(b, "root")); !ok {
				os.RemoveAll(b)
			}
			fmt.Fprintf(r.out, "INFO: scrub bootstrap: thinroot uses no bootstrap chroot\n")
		default:
			fmt.Fprintf(r.out, "INFO: scrub %s: kept; the snapshots and caches of %s serve every root of it (thinroot scrub %s removes them)\n",
				w, r.c.Root, r.c.Root)
		}
	}
	return nil
}

// sandboxSpec is how a command runs in the root: as root, or as the
// build user with --unpriv; in /, or in --cwd; binds from the
// bind_mount plugin's option.
func (r *mockRun) sandboxSpec(argv []string) (sandbox.Spec, error) {
	spec := sandbox.Spec{Root: r.root, Argv: argv, Env: r.rc.Environment, Dir: "/", Hostname: r.rc.Hostname,
		Network: r.o.EnableNetwork || r.rc.Networking || r.lc.build.Network}
	spec.HostResolver = spec.Network && (r.o.EnableNetwork || r.rc.UseHostResolv)
	if spec.Hostname == "" {
		spec.Hostname = "thinroot-" + r.ext
	}
	if r.o.Unpriv {
		spec.UID, spec.GID = r.uid, r.gid
		spec.Env = append(append([]string(nil), spec.Env...), "HOME="+r.rc.Home)
	}
	if r.o.Cwd != "" {
		spec.Dir = r.o.Cwd
	}
	binds, err := r.o.BindMounts()
	if len(r.o.PluginOptions) == 0 || len(binds) == 0 && err == nil {
		// --plugin-option bind_mount:dirs=... replaces the config's.
		binds = r.binds
	}
	if err != nil {
		var me *mockcli.Error
		if errors.As(err, &me) {
			return spec, &cliError{code: me.Code, msg: me.Msg}
		}
		return spec, err
	}
	for _, b := range binds {
		spec.Binds = append(spec.Binds, sandbox.Bind{Source: b[0], Target: b[1]})
	}
	return spec, nil
}

// chroot is --chroot and --shell: the command's status is mock's.
func (r *mockRun) chroot(ctx context.Context) error {
	logs, err := r.rootWithLogs(ctx)
	if err != nil {
		return err
	}
	defer logs.Close()
	argv := r.o.Command()
	interactive := false
	if r.o.Mode == mockcli.ModeShell {
		argv = r.o.ShellCommand()
		if argv == nil {
			argv = []string{"/bin/sh", "-i", "-l"}
			interactive = isTerminal(os.Stdin)
		}
	}
	spec, err := r.sandboxSpec(argv)
	if err != nil {
		return err
	}
	if r.o.Mode == mockcli.ModeShell {
		spec.Stdin, spec.Interactive = true, interactive
		if r.o.Cwd == "" {
			if fi, err := os.Stat(filepath.Join(r.root, r.rc.Home)); err == nil && fi.IsDir() {
				spec.Dir = r.rc.Home
			}
		}
	}
	state := fmt.Sprintf("%s %s", r.o.Mode, pkgmgr.PyRepr(argv))
	logs.Start(state)
	defer logs.Finish(state)
	cmd, err := sandbox.Command(ctx, spec)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = r.a.stdout, r.a.stderr
	return commandExit(ctx, cmd.Run())
}

// commandExit is mock's status for a command run in the root: its own,
// 128+N when signal N killed it.
func commandExit(ctx context.Context, err error) error {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return &cliError{code: exitInterrupted, err: errInterrupted, msg: "interrupted"}
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return silentExit{128 + int(ws.Signal())}
		}
		return silentExit{ee.ExitCode()}
	}
	return err
}

// install is --install: the package manager on the root, mock's 30 when
// it fails.
func (r *mockRun) install(ctx context.Context) error {
	logs, err := r.rootWithLogs(ctx)
	if err != nil {
		return err
	}
	defer logs.Close()
	state := "installing " + strings.Join(r.o.Args, " ")
	logs.Start(state)
	err = r.rc.PM.Run(ctx, r.root, pkgmgr.RunOptions{Out: logs.Root(), DetachUnder: []string{r.c.Basedir, r.a.g.stateDir},
		Waiting: func(l string) { logs.Info("waiting for the package cache lock %s", l) }}, append([]string{"install"}, r.o.Args...)...)
	logs.Finish(state)
	var pe *pkgmgr.Error
	if errors.As(err, &pe) {
		return &cliError{code: pe.ExitCode(), err: err, msg: oneLine(pe.Error()), hint: "root.log in " + r.result + " has the package manager's output"}
	}
	return err
}

// copy is --copyin and --copyout, done by cp inside the root so that no
// path in the root leads outside it: the host side is bound in.
// --copyin runs as root, --copyout as the build user (the files it
// writes on the host are the caller's).
func (r *mockRun) copy(ctx context.Context) error {
	logs, err := r.rootWithLogs(ctx)
	if err != nil {
		return err
	}
	defer logs.Close()
	cwd, _ := os.Getwd()
	args := r.o.Args
	srcs, dest := args[:len(args)-1], args[len(args)-1]
	const mnt = "/.thinroot-copy"
	spec := sandbox.Spec{Root: r.root, Dir: "/", Hostname: "thinroot-" + r.ext}
	argv := []string{"cp", "-a", "--"}
	if r.o.Mode == mockcli.ModeCopyIn {
		for i, s := range srcs {
			s = absFrom(cwd, s)
			t := fmt.Sprintf("%s/%d/%s", mnt, i, filepath.Base(s))
			spec.Binds = append(spec.Binds, sandbox.Bind{Source: s, Target: t, ReadOnly: true})
			argv = append(argv, t)
		}
		argv = append(argv, dest)
	} else {
		spec.UID, spec.GID = r.uid, r.gid
		dest = absFrom(cwd, dest)
		argv = append(argv, srcs...)
		if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
			spec.Binds = append(spec.Binds, sandbox.Bind{Source: dest, Target: mnt + "/out"})
			argv = append(argv, mnt+"/out/")
		} else {
			spec.Binds = append(spec.Binds, sandbox.Bind{Source: filepath.Dir(dest), Target: mnt + "/out"})
			argv = append(argv, mnt+"/out/"+filepath.Base(dest))
		}
	}
	spec.Argv = argv
	defer os.RemoveAll(filepath.Join(r.root, mnt[1:]))
	logs.Start(r.o.Mode)
	defer logs.Finish(r.o.Mode)
	cmd, err := sandbox.Command(ctx, spec)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = r.a.stdout, r.a.stderr
	if err := commandExit(ctx, cmd.Run()); err != nil {
		var se silentExit
		if errors.As(err, &se) {
			return &cliError{code: exitError, msg: fmt.Sprintf("%s of %s to %s failed (cp exited %d)", r.o.Mode, strings.Join(srcs, " "), dest, se.code)}
		}
		return err
	}
	return nil
}

// build is --rebuild (an SRPM, or a spec and its sources) and
// --buildsrpm, run by the builder in this process: in the existing root
// with -n, else in a fresh clone of the config's current snapshot (where
// builddep snapshots serve). The root stays afterwards when the result
// directory is inside <basedir>/<root> (kojid's case) or with
// --no-cleanup-after, as mock's cleanup rules say.
func (r *mockRun) build(ctx context.Context) error {
	o := r.o
	inPlace := false
	if r.family {
		// A family's root is bound where the farm looks for it: make it
		// (cloned from the family's snapshot) and build in it.
		if !o.NoClean {
			if err := r.removeRoot(ctx); err != nil {
				return err
			}
		}
		logs, err := r.openLogs()
		if err != nil {
			return err
		}
		_, err = r.ensureRoot(ctx, logs)
		logs.Close()
		if err != nil {
			return err
		}
		inPlace = true
	} else if o.NoClean {
		ok, err := r.workdir(ctx)
		if err != nil {
			return err
		}
		inPlace = ok
	} else if err := r.removeRoot(ctx); err != nil {
		return err
	}
	cwd, _ := os.Getwd()
	var reqs []builder.Request
	base := builder.Request{Config: r.c.Root, UniqueExt: r.ext, Keep: true, Network: o.EnableNetwork, ResultDir: r.result,
		RPMRequest: builder.RPMRequest{Target: o.Target, Defines: o.Defines, With: o.With, Without: o.Without}}
	if o.Spec != "" {
		q := base
		q.Spec = absFrom(cwd, o.Spec)
		if o.Sources != "" {
			q.Sources = absFrom(cwd, o.Sources)
		}
		q.SRPMOnly = o.Mode == mockcli.ModeBuildSRPM
		reqs = append(reqs, q)
	}
	if o.Mode == mockcli.ModeRebuild {
		for _, s := range o.Args {
			q := base
			q.SRPM = absFrom(cwd, s)
			reqs = append(reqs, q)
		}
	}
	var failed error
	for i, q := range reqs {
		q.InPlace = inPlace || i > 0
		if err := r.runBuild(ctx, q); err != nil {
			failed = err
			break
		}
	}
	keep := strings.HasPrefix(r.result, r.wdir+"/") || o.NoCleanupAfter
	if !keep && ctx.Err() == nil {
		if err := r.removeRoot(ctx); err != nil && failed == nil {
			failed = err
		}
		os.Remove(filepath.Join(r.wdir, "buildroot.lock"))
		os.Remove(r.wdir)
	}
	if failed == nil {
		fmt.Fprintf(r.out, "INFO: Results and/or logs in: %s\n", r.result)
	}
	return failed
}

// runBuild runs one request through an in-process builder and returns
// mock's status for it. The builder's record goes once the build is
// over: the logs and results are in the result directory.
func (r *mockRun) runBuild(ctx context.Context, req builder.Request) error {
	info := r.lc.build
	info.RPM = r.rc
	stateDir := filepath.Join(r.a.g.stateDir, "mock")
	b, err := builder.New(ctx, builder.Options{StateDir: stateDir, Jobs: 1, Manager: r.m, Log: r.a.logger(), KeepInterrupted: true,
		Resolve: func(root string) (builder.ConfigInfo, error) {
			if root != r.c.Root {
				return builder.ConfigInfo{}, builder.Refusal(builder.ErrUnknownConfig, "not this run's config: "+root)
			}
			return info, nil
		}})
	if err != nil {
		return fmt.Errorf("builder in %s: %w", stateDir, err)
	}
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.Start(bctx)
	defer func() {
		stop()
		b.Shutdown()
	}()
	rec, err := b.Submit(req, r.caller.uid)
	if err != nil {
		if errors.Is(err, builder.ErrBadRequest) {
			return &cliError{code: mockcli.ExitBadCmdline, msg: oneLine(err.Error()), err: err}
		}
		return err
	}
	defer os.RemoveAll(filepath.Join(stateDir, "builds", rec.ID))
	followed := make(chan struct{})
	if ls, err := b.Log(rec.ID); err == nil {
		go func() {
			defer close(followed)
			ls.Follow(bctx, 0, true, r.out, nil)
		}()
	} else {
		close(followed)
	}
	final, err := b.WaitFor(ctx, rec.ID)
	if err == nil {
		// The log ends when the build's last line is written.
		select {
		case <-followed:
		case <-time.After(5 * time.Second):
		}
	}
	if err != nil {
		return commandExit(ctx, err)
	}
	switch {
	case final.State == builder.StateSucceeded:
		return nil
	case final.ExitCode != nil && *final.ExitCode > 0:
		msg := final.Error
		if msg == "" {
			msg = fmt.Sprintf("build failed with exit status %d", *final.ExitCode)
		}
		return &cliError{code: *final.ExitCode, msg: oneLine(msg), hint: "build.log and root.log in " + r.result + " say why"}
	}
	return &cliError{code: exitError, msg: fmt.Sprintf("build %s: %s", final.State, oneLine(final.Error)), hint: "root.log in " + r.result + " says more"}
}

// configBinds are the bind_mount plugin's dirs of a config, as (host,
// chroot) pairs; none when the plugin is off. Koji appends to them (a
// credentials directory, /dev for image tasks).
func configBinds(cfg *mockcfg.Config) [][2]string {
	if on, ok := cfg.Bool("plugin_conf", "bind_mount_enable"); ok && !on {
		return nil
	}
	v, _ := cfg.Get("plugin_conf", "bind_mount_opts", "dirs")
	var out [][2]string
	for _, e := range seq(v) {
		p := seq(e)
		if len(p) != 2 {
			continue
		}
		src, ok1 := p[0].(string)
		dst, ok2 := p[1].(string)
		if ok1 && ok2 {
			out = append(out, [2]string{src, dst})
		}
	}
	return out
}

func seq(v any) []any {
	switch x := v.(type) {
	case mockcfg.List:
		return x
	case mockcfg.Tuple:
		return x
	}
	return nil
}
