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

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
)

func init() {
	register(&command{
		name: "mount", args: "MOUNTPOINT",
		summary: "show pools, configs, snapshots and workdirs as a tree at MOUNTPOINT (foreground; man thinroot-tree(5))",
		flags: func(fs *pflag.FlagSet) {
			configFlags(fs)
			fs.StringArray("config", nil, "register config NAME with the config flags (repeatable); configs with volumes show anyway")
			fs.Bool("allow-other", false, "let other users than the mounting one into the tree (a normal user needs user_allow_other in /etc/fuse.conf)")
			fs.String("group", "", "group owning the tree with root, whose members may mkdir, rmdir and write actions (default: mock if it exists, else root)")
			fs.Duration("refresh", fsview.DefaultRefresh, "how often the pools are rescanned; outside changes show within two intervals")
			fs.Bool("debug-fuse", false, "log every FUSE request")
		},
		run: runMount,
	})
}

func runMount(ctx context.Context, a *app, args []string) error {
	mp, err := oneArg(args, "MOUNTPOINT")
	if err != nil {
		return err
	}
	if mp, err = filepath.Abs(mp); err != nil {
		return err
	}
	log := a.logger()
	fl := a.flags
	allowOther, _ := fl.GetBool("allow-other")
	refresh, _ := fl.GetDuration("refresh")
	debug, _ := fl.GetBool("debug-fuse")
	groupName, _ := fl.GetString("group")
	names, _ := fl.GetStringArray("config")
	if refresh <= 0 {
		return usageErr("--refresh must be positive")
	}
	gid, group, err := treeGroup(groupName)
	if err != nil {
		return err
	}
	var configs []lvm.Config
	for _, n := range names {
		c, err := a.configFromFlags(n, nil)
		if err != nil {
			return err
		}
		configs = append(configs, c)
	}
	if err := detachStale(log, mp); err != nil {
		return err
	}
	m, err := a.manager(ctx, configs...)
	if err != nil {
		return err
	}
	tree := fsview.New(m, fsview.Options{Refresh: refresh, GID: gid, Log: log})
	opts := tree.FuseOptions(fuse.MountOptions{
		AllowOther: allowOther,
		// As root, mount(2) directly: no helper binary, no setuid program.
		DirectMount: os.Geteuid() == 0,
		Debug:       debug,
	})
	// A second signal while waiting for a busy tree's users stops at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	server, err := fs.Mount(mp, tree.Root(), opts)
	if err != nil {
		return fmt.Errorf("mount the tree on %s: %w", mp, err)
	}
	log.Info("tree mounted", "mountpoint", mp, "group", group, "gid", gid, "refresh", refresh, "allow_other", allowOther)
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go tree.Run(runCtx)

	served := make(chan struct{})
	go func() { server.Wait(); close(served) }()
	select {
	case <-served:
		log.Info("the tree was unmounted from outside", "mountpoint", mp)
		return nil
	case <-ctx.Done():
	case s := <-sigs:
		log.Info("signal received", "signal", s.String())
	}
	log.Info("unmounting the tree", "mountpoint", mp)
	err = server.Unmount()
	if err == nil {
		<-served
		log.Info("tree unmounted", "mountpoint", mp)
		return nil
	}
	log.Warn("the tree is busy; detaching it lazily", "mountpoint", mp, "err", err)
	if err := lazyUnmount(mp); err != nil {
		return fmt.Errorf("detach the tree: %w", err)
	}
	log.Info("tree detached; serving its remaining users until they leave (signal again to stop now)", "mountpoint", mp)
	select {
	case <-served:
		log.Info("last user left the tree")
	case <-sigs:
		log.Warn("stopping with users still in the detached tree; they get ENOTCONN")
	}
	return nil
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
		return 0, "", fmt.Errorf("--group: %w", err)
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
			return fmt.Errorf("%s: something is mounted there already; unmount it first", mp)
		}
		return nil
	case errors.Is(err, unix.ENOTCONN):
		log.Warn("detaching a stale mount left by a server that died", "mountpoint", mp)
		if err := lazyUnmount(mp); err != nil {
			return fmt.Errorf("detach the stale mount on %s: %w", mp, err)
		}
		if err := unix.Statfs(mp, &sfs); err != nil {
			return fmt.Errorf("%s after detaching the stale mount: %w", mp, err)
		}
		return nil
	default:
		return fmt.Errorf("mount point: %w", err)
	}
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
