package lvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/blockfs"
	"github.com/thinroot/thinroot/lvm/journal"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Init bootstraps a config once: base volume (with its filesystem on a
// block backend), mount, bootstrap, postinit snapshot, unmount. When
// another process (thinroot or mock) is initializing the same config,
// Init waits on mock's init lock and then uses its postinit. A failed or
// interrupted init publishes nothing: the base volume is removed, the
// failure is recorded in the config's state, and the next Init starts
// over clean. out receives the bootstrap's output. It returns whether
// this call did the bootstrap.
func (m *Manager) Init(ctx context.Context, root string, out io.Writer) (bool, error) {
	return m.InitWatch(ctx, root, out, nil)
}

// Init phases reported to InitWatch's watch function.
const (
	PhaseWaitingInit   = "waiting-init"  // another process holds the init lock
	PhaseBootstrapping = "bootstrapping" // this call runs the bootstrap
)

// InitWatch is Init that also tells watch when it starts waiting for the
// init lock and when it starts bootstrapping.
func (m *Manager) InitWatch(ctx context.Context, root string, out io.Writer, watch func(phase string)) (bool, error) {
	if watch == nil {
		watch = func(string) {}
	}
	if out == nil {
		out = io.Discard
	}
	c, err := m.opConfig(root)
	if err != nil {
		return false, err
	}
	if len(c.Bootstrap) == 0 {
		return false, fmt.Errorf("init %s: the config has no bootstrap command", root)
	}
	if err := m.EnsurePool(ctx, root); err != nil {
		return false, fmt.Errorf("init %s: %w", root, err)
	}
	if m.report(c.Pool).Find(mock.SnapshotVolume(root, mock.PostInit)) != nil {
		return false, nil
	}
	if err := os.MkdirAll(c.Basedir, 0o755); err != nil {
		return false, fmt.Errorf("basedir: %w", err)
	}
	initLock, err := lock.Lock(ctx, c.InitLockPath(), true, func(h lock.Holder) {
		m.log.Info("waiting for init lock: another process is bootstrapping the config", "config", root, "holder_pid", h.PID)
		watch(PhaseWaitingInit)
	})
	if err != nil {
		return false, fmt.Errorf("init %s: %w", root, err)
	}
	defer initLock.Release()
	did := false
	err = m.do(ctx, root, lockFresh, func(o *op) error {
		if o.r.Find(mock.SnapshotVolume(root, mock.PostInit)) != nil {
			m.log.Info("config was initialized by another process", "config", root)
			return nil
		}
		watch(PhaseBootstrapping)
		did = true
		return o.bootstrap(out)
	})
	if err != nil {
		return false, err
	}
	return did, nil
}

// bootstrap runs under the exclusive init lock. o.mctx is never
// cancelled (steps that change volumes run to the end); o.ctx cancels the
// bootstrap command itself, after which everything is rolled back.
func (o *op) bootstrap(out io.Writer) error {
	c := o.c
	base := mock.WorkdirVolume(c.Root, c.UniqueExt)
	postinit := mock.SnapshotVolume(c.Root, mock.PostInit)
	target := c.ChrootDir(c.UniqueExt)
	if err := o.clearFailedBase(base, target); err != nil {
		return err
	}
	if err := o.m.ensureSpace(o.mctx, c, o.be, o.r); err != nil {
		return fmt.Errorf("init %s: %w", c.Root, err)
	}
	os.Remove(o.m.statusPath(c.Root))
	err := o.begin(journal.Intent{Op: journal.Init, Volumes: []string{base, postinit},
		Mounts: []string{target}, Frozen: []string{target}, Records: []journal.Record{o.record(c.UniqueExt, postinit)}})
	if err != nil {
		return err
	}
	start := time.Now()
	o.m.log.Info("bootstrapping config", "config", c.Root, "pool", c.Pool, "argv", c.Bootstrap)
	step, err := o.bootstrapSteps(out, base, postinit, target)
	if err != nil {
		err = fmt.Errorf("init %s: %s: %w", c.Root, step, err)
		// The failure shows in the config's state until the next init.
		reason := strings.ReplaceAll(err.Error(), "\n", " ")
		os.WriteFile(o.m.statusPath(c.Root), []byte(reason+"\n"), 0o644)
		return err
	}
	o.m.log.Info("config initialized", "config", c.Root, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// clearFailedBase removes the base volume a failed init left: the init
// lock is ours and there is no postinit, so a previous init failed
// (mock's own rule). It never destroys a workdir cloned from a snapshot.
func (o *op) clearFailedBase(base, target string) error {
	v := o.r.Find(base)
	if v == nil {
		return nil
	}
	if v.Origin != "" && o.r.Find(v.Origin) != nil {
		return fmt.Errorf("init %s: workdir %s exists (cloned from %s) but there is no postinit; remove it first: %w", o.c.Root, base, v.Origin, ErrExists)
	}
	o.m.log.Warn("removing the base volume of a failed init", "config", o.c.Root, "volume", base)
	if err := o.m.mounter.Unmount(target, true); err != nil {
		return err
	}
	if err := o.be.Remove(o.mctx, o.c.Pool, base); err != nil && !isNotFound(err) {
		return fmt.Errorf("init %s: remove old base: %w", o.c.Root, err)
	}
	o.m.patch(o.c.Pool, nil, base)
	return nil
}

// bootstrapSteps are init's steps after its intent; it names the step
// that failed.
func (o *op) bootstrapSteps(out io.Writer, base, postinit, target string) (string, error) {
	c, be := o.c, o.be
	crashpoint.Hit("init:before-base")
	v, err := be.Create(o.mctx, c.Pool, base, c.Size)
	if err != nil {
		return "create base volume", err
	}
	crashpoint.Hit("init:after-base")
	if be.Capabilities().Block {
		if err := blockfs.Make(o.mctx, v.Mount.Source, c.format()); err != nil {
			release(be, v)
			return "mkfs", err
		}
		crashpoint.Hit("init:after-mkfs")
	}
	err = o.m.mountVolume(c, be, v, target)
	release(be, v)
	if err != nil {
		return "mount base", err
	}
	crashpoint.Hit("init:before-bootstrap")
	if err := runBootstrap(o.ctx, c, target, out); err != nil {
		return "bootstrap", err
	}
	crashpoint.Hit("init:after-bootstrap")
	// postinit is taken while the base is still mounted (frozen for the
	// copy where the backend needs it). After an unmount the filesystem
	// is not necessarily shut down and written out: any process that made
	// itself a mount namespace meanwhile (a build's sandbox, unshare,
	// systemd) holds a copy of the mount, the unmount then only detaches
	// ours, and a copy of the image would miss what the bootstrap wrote.
	crashpoint.Hit("init:before-postinit")
	snap, err := be.Snapshot(o.mctx, c.Pool, base, postinit, backend.SnapshotOptions{OriginMount: target})
	if err != nil {
		return "postinit snapshot", err
	}
	crashpoint.Hit("init:after-postinit")
	if err := o.m.mounter.Unmount(target, false); err != nil {
		return "unmount base", err
	}
	crashpoint.Hit("init:after-unmount")
	if err := c.dirs().WriteSnapinfo(c.UniqueExt, postinit); err != nil {
		return "record current snapshot", err
	}
	crashpoint.Hit("init:after-record")
	// The base's content now lives on in postinit (snapshots do not
	// depend on their origin); a workdir for this ext is made from
	// postinit when someone asks for one, as mock does after a rollback.
	if err := be.Remove(o.mctx, c.Pool, base); err != nil && !isNotFound(err) {
		o.m.log.Warn("remove base volume after postinit", "volume", base, "err", err)
	}
	crashpoint.Hit("init:after-base-remove")
	removeMountDirs(target)
	o.m.patch(c.Pool, snap, base)
	return "", nil
}

// runBootstrap runs the config's bootstrap argv with ROOT set. It runs in
// the config's BootstrapDir (the config file's directory) or else the
// caller's working directory, never in a mount of ours: the daemon runs
// from "/".
//
// Its first process is pid 1 of a new pid namespace and gets SIGKILL when
// this process dies: the kernel then kills every process of the
// bootstrap. Otherwise a thinroot killed mid-bootstrap left the
// bootstrap's processes writing into a root that recovery had already
// detached, holding its loop device until they ended. Its own process
// group lets a cancel kill all of it too. Without root (the Manager's
// tests on the memory backend) there is no pid namespace to make: the
// process group and the death signal of the first process remain.
func runBootstrap(ctx context.Context, c *Config, root string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, c.Bootstrap[0], c.Bootstrap[1:]...)
	cmd.Dir = c.BootstrapDir
	cmd.Env = append(append(os.Environ(), "ROOT="+root, "THINROOT_CONFIG="+c.Root), c.BootstrapEnv...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := startInGroup(ctx, cmd); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return err
	}
	return nil
}

// startInGroup starts cmd in the cgroup of ctx (a build's), if any,
// before it can fork: on cgroup v2 the kernel starts it there
// (CLONE_INTO_CGROUP); on v1 a shell joins the group and then execs it
// (a process moved after it started would leave its children behind, out
// of the build's limits).
func startInGroup(ctx context.Context, cmd *exec.Cmd) error {
	g := cgroup.FromContext(ctx)
	if g == nil {
		return cmd.Start()
	}
	if fd, ok := g.FD(); ok {
		defer syscall.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		return cmd.Start()
	}
	if cmd.Err != nil {
		return cmd.Err
	}
	const join = `for p in $THINROOT_CGROUP_PROCS; do echo 0 > "$p" || exit 125; done; unset THINROOT_CGROUP_PROCS; exec "$@"`
	cmd.Args = append([]string{"/bin/sh", "-c", join, "thinroot-bootstrap", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
	cmd.Env = append(cmd.Env, "THINROOT_CGROUP_PROCS="+strings.Join(g.Procs(), " "))
	return cmd.Start()
}
