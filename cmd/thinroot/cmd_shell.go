package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/pkgmgr"
	"github.com/thinroot/thinroot/rpmroot"
	"github.com/thinroot/thinroot/sandbox"
)

// shell, chroot and install work in a config's workdir (its unique-ext,
// --uniqueext), made from the current snapshot when missing, with the
// config bootstrapped first when it is not, as mock inits on demand. The
// workdir stays afterwards: with thinroot snapshot this is mock's LVM
// workflow (install extra packages once, snapshot, build many times from
// the snapshot). What a command mounts lives in its own namespace, so
// nothing stays mounted, also when it is killed.

// shellFlags are the flags of shell and chroot (mock's).
func shellFlags(fs *pflag.FlagSet) {
	fs.Bool("unpriv", false, "run as the build user (chrootuid) instead of root (mock --unpriv)")
	fs.Bool("network", false, "share the host's network, with its resolv.conf and hosts (mock --enable-network)")
	fs.String("cwd", "", "working directory inside (default: shell the build user's home, chroothome; chroot /)")
}

var cmdShell = &command{
	name: "shell", group: "buildroots", args: []arg{argCfg}, tail: "CMD ARGS...",
	summary: "a shell in the config's workdir, or CMD through /bin/sh",
	help: "Interactive at a terminal. The workdir is the one of the config's unique-ext (--uniqueext), made from the " +
		"current snapshot when missing, after the config's init when needed; it stays afterwards. /proc, a read-only " +
		"/sys, a minimal /dev and a private /tmp are mounted for the command in its own namespace, never left behind. " +
		"Exits with the command's status.",
	mock:  "mock -r CONFIG --shell [CMD]",
	uses:  useConfig | useUniqueExt | useAdHoc,
	flags: shellFlags,
	run:   runShell,
}

var cmdChroot = &command{
	name: "chroot", group: "buildroots", args: []arg{argCfg}, tail: "CMD ARGS...",
	summary: "run CMD in the config's workdir; one word runs through /bin/sh",
	help: "As mock's --chroot: one word is a shell command line, several are run as they are. The workdir and its " +
		"mounts are shell's. Exits with the command's status.",
	mock:  "mock -r CONFIG --chroot CMD",
	uses:  useConfig | useUniqueExt | useAdHoc,
	flags: shellFlags,
	run:   runChroot,
}

var cmdInstall = &command{
	name: "install", group: "buildroots", args: []arg{argCfg, {name: "PKG", repeat: true}},
	summary: "install packages into the config's workdir",
	help:    "With the config's package manager, its output in root.log of the workdir's result directory, as mock --install.",
	mock:    "mock -r CONFIG --install PKG...",
	uses:    useConfig | useUniqueExt | useAdHoc,
	run:     runInstall,
}

// workdirFor returns the config's workdir for its unique-ext, making it
// (and the config's postinit) when missing.
func (a *app) workdirFor(ctx context.Context, name string) (*lvm.Manager, loadedConfig, string, error) {
	lc, err := a.resolveConfig(name, nil)
	if err != nil {
		return nil, lc, "", err
	}
	m, err := a.manager(ctx, lc.vol)
	if err != nil {
		return nil, lc, "", err
	}
	c, err := m.Config(lc.vol.Root)
	if err != nil {
		return nil, lc, "", err
	}
	if _, cs := m.State().Config(c.Root); cs == nil || cs.State != lvm.StateReady {
		cat := catchBootstrap(a.stderr)
		if _, err := m.Init(ctx, c.Root, cat); err != nil {
			return nil, lc, "", cat.Err(err)
		}
	}
	root := c.ChrootDir(c.UniqueExt)
	if _, cs := m.State().Config(c.Root); cs == nil || cs.Workdir(c.UniqueExt) == nil {
		w, err := m.CreateWorkdir(ctx, c.Root, "", c.UniqueExt)
		if err != nil && !errors.Is(err, lvm.ErrExists) {
			return nil, lc, "", err
		}
		if err == nil {
			fmt.Fprintf(a.stderr, "thinroot: workdir %s.%s made from snapshot %s at %s\n", c.Root, c.UniqueExt, w.Snapshot, w.Mountpoint)
		}
	}
	if ok, _ := mount.IsMountpoint(root); !ok {
		return nil, lc, "", fmt.Errorf("workdir %s.%s exists but is not mounted at %s (thinroot serve mounts every workdir)", c.Root, c.UniqueExt, root)
	}
	return m, lc, root, nil
}

func runShell(ctx context.Context, a *app, args []string) error {
	// mock's shell: an interactive login shell, or the command line
	// through the shell.
	argv := []string{"/bin/sh", "-i", "-l"}
	interactive := true
	if len(a.tail) > 0 {
		argv = []string{"/bin/sh", "-c", strings.Join(a.tail, " ")}
		interactive = isTerminal(os.Stdin)
	}
	return a.runInWorkdir(ctx, args[0], argv, interactive, true, true)
}

func runChroot(ctx context.Context, a *app, args []string) error {
	cmd := a.tail
	if len(cmd) == 0 {
		return usageErr("chroot needs the command after --: thinroot chroot CONFIG -- CMD ARGS...")
	}
	if len(cmd) == 1 {
		// mock's rule: one word runs through the shell.
		cmd = []string{"/bin/sh", "-c", cmd[0]}
	}
	return a.runInWorkdir(ctx, args[0], cmd, false, false, false)
}

// runInWorkdir runs argv in the config's workdir in the sandbox, with
// mock's mounts, and exits with its status. It starts in the build
// user's home when inHome (mock's shell), else in / (mock's chroot),
// unless --cwd says otherwise.
func (a *app) runInWorkdir(ctx context.Context, name string, argv []string, interactive, stdin, inHome bool) error {
	m, lc, root, err := a.workdirFor(ctx, name)
	if err != nil {
		return a.initErr(err)
	}
	c, _ := m.Config(lc.vol.Root)
	ext := c.UniqueExt
	if err := m.Hold(c.Root, ext, fmt.Sprintf("thinroot shell (pid %d)", os.Getpid())); err == nil {
		defer m.Unhold(c.Root, ext)
	}
	unpriv, _ := a.flags.GetBool("unpriv")
	network, _ := a.flags.GetBool("network")
	cwd, _ := a.flags.GetString("cwd")
	spec := sandbox.Spec{Root: root, Argv: argv, Network: network || lc.build.Network, Interactive: interactive, Stdin: stdin,
		Hostname: "thinroot-" + ext}
	spec.HostResolver = spec.Network
	home := "/"
	if rc := lc.build.RPM; rc != nil {
		spec.Env = append(spec.Env, rc.Environment...)
		home = rc.Home
		if rc.Hostname != "" {
			spec.Hostname = rc.Hostname
		}
		if unpriv {
			spec.UID, spec.GID = rc.UID, rc.GID
		}
	} else if unpriv {
		spec.UID, spec.GID = 1000, 1000
	}
	if t := os.Getenv("TERM"); t != "" && interactive {
		spec.Env = append(spec.Env, "TERM="+t)
	}
	if cwd != "" {
		spec.Dir = cwd
	} else if fi, err := os.Stat(filepath.Join(root, home)); inHome && err == nil && fi.IsDir() {
		spec.Dir = home
	}
	ctx, release, err := shellGroup(ctx, lc.build.Limits, a.logger())
	if err != nil {
		return err
	}
	defer release()
	cmd, err := sandbox.Command(ctx, spec)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	return commandExit(ctx, cmd.Run())
}

func runInstall(ctx context.Context, a *app, args []string) error {
	m, lc, root, err := a.workdirFor(ctx, args[0])
	if err != nil {
		return a.initErr(err)
	}
	rc := lc.build.RPM
	if rc == nil {
		return fmt.Errorf("config %s has no package manager thinroot drives (dnf, dnf5 or yum)", lc.vol.Root)
	}
	c, _ := m.Config(lc.vol.Root)
	if err := m.Hold(c.Root, c.UniqueExt, fmt.Sprintf("thinroot install (pid %d)", os.Getpid())); err == nil {
		defer m.Unhold(c.Root, c.UniqueExt)
	}
	// mock --install logs into the config's result directory.
	logs, err := rpmroot.OpenLogs(filepath.Join(c.WorkdirDir(c.UniqueExt), "result"), rc.UID, rc.GID, rc.Version, a.stdout)
	if err != nil {
		return err
	}
	defer logs.Close()
	logs.Start("installing " + strings.Join(args[1:], " "))
	err = rc.PM.Run(ctx, root, pkgmgr.RunOptions{Out: logs.Root(), DetachUnder: []string{c.Basedir, a.g.stateDir},
		Waiting: func(l string) { logs.Info("waiting for the package cache lock %s", l) }}, append([]string{"install"}, args[1:]...)...)
	logs.Finish("installing " + strings.Join(args[1:], " "))
	var pe *pkgmgr.Error
	if errors.As(err, &pe) {
		return &cliError{code: pe.ExitCode(), err: err, msg: oneLine(pe.Error()),
			hint: "the package manager's output is in " + filepath.Join(c.WorkdirDir(c.UniqueExt), "result", "root.log")}
	}
	return err
}

// initErr gives a failed on-demand init mock's exit status.
func (a *app) initErr(err error) error {
	if code, ok := bootstrapExit(err); ok {
		return &cliError{code: code, err: err, msg: oneLine(err.Error()),
			hint: "fix the packages or repositories named; nothing was kept"}
	}
	return err
}
