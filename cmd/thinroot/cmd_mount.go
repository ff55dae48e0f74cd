package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/internal/fusesrv"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
)

var cmdMount = &command{
	name: "mount", group: "daemon", args: []arg{{name: "MOUNTPOINT", kind: argDir}},
	summary: "show pools, configs, snapshots and workdirs as a tree at MOUNTPOINT",
	help: "Serves the tree (man thinroot-tree(5)) in the foreground until SIGINT or SIGTERM, then unmounts it " +
		"(lazily while users are inside). Every config in the config dir is shown, or those given with -r. " +
		"A stale mount left by a killed server is detached first.",
	uses: useTree | useConfigs | useAdHoc,
	run:  runMount,
}

// treeFlags are the flags of every command that mounts the tree.
func treeFlags(fs *pflag.FlagSet) {
	fs.Bool("allow-other", false, "let other users than the mounting one into the tree (a normal user needs user_allow_other in /etc/fuse.conf)")
	fs.String("group", "", "group owning the tree with root, whose members may mkdir, rmdir and write actions (default: mock if it exists, else root)")
	fs.Var(&durationValue{v: fsview.DefaultRefresh}, "refresh", "how often the pools are rescanned (above zero); outside changes show within two intervals")
	fs.Bool("debug-fuse", false, "log every FUSE request")
	fs.Var(&countValue{min: 0, def: "1"}, "spares", "warm spares kept per config and snapshot used recently, 0 for none (default 1)")
}

// defaultSpares is how many warm spares the tree's server keeps per
// (config, snapshot) used recently unless --spares says otherwise.
const defaultSpares = 1

// treeServer is a mounted tree and how to take it down.
type treeServer struct {
	mp     string
	tree   *fsview.Tree
	server *fuse.Server
	log    *slog.Logger
	stop   context.CancelFunc
	served chan struct{}
	// stopSpares removes the warm spares once the tree is down.
	stopSpares func()
}

// treeSetup reads the tree flags.
type treeSetup struct {
	mp         string
	allowOther bool
	refresh    time.Duration
	debug      bool
	spares     int
	gid        uint32
	group      string
}

func (a *app) treeSetup(mp string) (treeSetup, error) {
	var ts treeSetup
	var err error
	if ts.mp, err = filepath.Abs(mp); err != nil {
		return ts, err
	}
	fl := a.flags
	ts.allowOther = getBool(fl, "allow-other")
	ts.refresh = getDuration(fl, "refresh")
	ts.debug = getBool(fl, "debug-fuse")
	ts.spares = defaultSpares
	if changed(fl, "spares") {
		ts.spares = getCount(fl, "spares")
	}
	ts.gid, ts.group, err = treeGroup(getString(fl, "group"))
	return ts, err
}

// mountTree mounts the tree over m at ts.mp and starts its refresher.
func (a *app) mountTree(ts treeSetup, m *lvm.Manager, builds fsview.Builds) (*treeServer, error) {
	log := a.logger()
	if err := detachStale(log, ts.mp); err != nil {
		return nil, err
	}
	tree := fsview.New(m, fsview.Options{Refresh: ts.refresh, GID: ts.gid, Log: log, Builds: builds})
	opts := tree.FuseOptions(fuse.MountOptions{
		AllowOther: ts.allowOther,
		// As root, mount(2) directly: no helper binary, no setuid program.
		DirectMount: os.Geteuid() == 0,
		Debug:       ts.debug,
	})
	server, err := fusesrv.Mount(ts.mp, tree.Root(), opts)
	if err != nil {
		return nil, fmt.Errorf("mount the tree on %s: %w", ts.mp, err)
	}
	if os.Geteuid() == 0 {
		// Should this process die, its users get errors, not a hang.
		if err := fusesrv.Watch(ts.mp); err != nil {
			log.Warn("no watchdog for the tree: if this server is killed, its users may hang until the mount is aborted", "err", err)
		}
	}
	log.Info("tree mounted", "mountpoint", ts.mp, "group", ts.group, "gid", ts.gid, "refresh", ts.refresh, "allow_other", ts.allowOther)
	runCtx, stop := context.WithCancel(context.Background())
	go tree.Run(runCtx)
	t := &treeServer{mp: ts.mp, tree: tree, server: server, log: log, stop: stop, served: make(chan struct{}), stopSpares: func() {}}
	if ts.spares > 0 {
		if err := m.StartSpares(runCtx, lvm.SpareOptions{Count: ts.spares}); err != nil {
			log.Warn("no warm spares: every workdir is cloned when asked for", "err", err)
		} else {
			t.stopSpares = func() { m.StopSpares(context.Background()) }
		}
	}
	go func() { server.Wait(); close(t.served) }()
	return t, nil
}

// waitAndUnmount blocks until ctx ends, a signal comes or the tree is
// unmounted from outside, then unmounts it: cleanly, or lazily while
// users are still inside (serving them until they leave or a second
// signal comes).
func (t *treeServer) waitAndUnmount(ctx context.Context, sigs <-chan os.Signal) error {
	defer t.stop()
	defer t.stopSpares()
	log, mp := t.log, t.mp
	select {
	case <-t.served:
		log.Info("the tree was unmounted from outside", "mountpoint", mp)
		return nil
	case <-ctx.Done():
	case s := <-sigs:
		log.Info("signal received", "signal", s.String())
	}
	log.Info("unmounting the tree", "mountpoint", mp)
	err := t.server.Unmount()
	if err == nil {
		<-t.served
		log.Info("tree unmounted", "mountpoint", mp)
		return nil
	}
	log.Warn("the tree is busy; detaching it lazily", "mountpoint", mp, "err", err)
	if err := lazyUnmount(mp); err != nil {
		return fmt.Errorf("detach the tree: %w", err)
	}
	log.Info("tree detached; serving its remaining users until they leave (signal again to stop now)", "mountpoint", mp)
	select {
	case <-t.served:
		log.Info("last user left the tree")
	case <-sigs:
		log.Warn("stopping with users still in the detached tree; they get ENOTCONN")
	}
	return nil
}

func runMount(ctx context.Context, a *app, args []string) error {
	ts, err := a.treeSetup(args[0])
	if err != nil {
		return err
	}
	configs, err := a.loadConfigs(ctx)
	if err != nil {
		return err
	}
	// A second signal while waiting for a busy tree's users stops at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	m, err := a.servingManager(ctx, configs)
	if err != nil {
		return err
	}
	t, err := a.mountTree(ts, m, nil)
	if err != nil {
		return err
	}
	return t.waitAndUnmount(context.WithoutCancel(ctx), sigs)
}

// treeGroup resolves --group: a name or number; empty means mock's group
// when the host has one (mock's users are in it), else root.
func treeGroup(name string) (uint32, string, error) {
	if name == "" {
		if g, err := user.LookupGroup("mock"); err == nil {
			id, _ := strconv.ParseUint(g.Gid, 10, 32)
			return uint32(id), g.Name, nil
		}
		return 0, "root", nil
	}
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(id), name, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, "", usageErr("--group %s: no such group; give a group name or number (getent group lists them)", name)
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("--group %s: gid %q: %w", name, g.Gid, err)
	}
	return uint32(id), g.Name, nil
}

// detachStale clears a mount whose server died (kill -9 leaves the kernel
// answering ENOTCONN there), so the tree can be mounted again in its
// place. A live mount is left alone and refused.
func detachStale(log *slog.Logger, mp string) error {
	// statfs always asks the filesystem, where a stat may be answered
	// from the kernel's attribute cache even after the server died.
	var sfs unix.Statfs_t
	err := unix.Statfs(mp, &sfs)
	switch {
	case err == nil:
		if ok, _ := mount.IsMountpoint(mp); ok {
			return &cliError{code: exitBusy, msg: fmt.Sprintf("%s: something is mounted there already", mp),
				hint: "unmount it first, or mount the tree somewhere else"}
		}
		return nil
	case deadMount(err):
		log.Warn("detaching a stale mount left by a server that died", "mountpoint", mp)
		if err := lazyUnmount(mp); err != nil {
			return fmt.Errorf("detach the stale mount on %s: %w", mp, err)
		}
		if err := unix.Statfs(mp, &sfs); err != nil {
			return fmt.Errorf("%s after detaching the stale mount: %w", mp, err)
		}
		return nil
	case errors.Is(err, unix.ENOENT):
		return usageErr("mount point %s does not exist; make the directory first", mp)
	default:
		return fmt.Errorf("mount point: %w", err)
	}
}

// deadMount tells whether err is what a FUSE mount whose server died
// answers: ENOTCONN, or ECONNABORTED while the kernel is still aborting
// the requests that were in flight when it died.
func deadMount(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// lazyUnmount detaches mp now; the kernel finishes when its users leave.
func lazyUnmount(mp string) error {
	if os.Geteuid() == 0 {
		return mount.Unmount(mp, true)
	}
	bin := "fusermount3"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "fusermount"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Run from "/" so the helper never starts inside a mount.
	cmd := exec.CommandContext(ctx, bin, "-u", "-z", mp)
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s -u -z %s: %v: %s", bin, mp, err, out)
	}
	return nil
}
