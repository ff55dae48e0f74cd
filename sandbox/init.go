package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/internal/mount"
)

// runInit is the sandbox's pid 1: set up the root, run the command as the
// build user, reap orphans, and return the command's exit status.
// It is long because pid 1's duties (setup, start, reap, relay signals,
// report) share its state and run in this order.
func runInit(spec Spec) int {
	// First of all, before anything can fork: the build's cgroup.
	if err := cgroup.Join(spec.Cgroup); err != nil {
		fatal("%v", err)
	}
	if err := setupRoot(spec); err != nil {
		fatal("%v", err)
	}
	if spec.Hostname != "" {
		unix.Sethostname([]byte(spec.Hostname))
	}
	if !spec.Network {
		if err := loopbackUp(); err != nil {
			fatal("loopback: %v", err)
		}
	}
	if spec.Outside {
		if err := detachUnder(spec); err != nil {
			fatal("%v", err)
		}
	} else if err := enterRoot(spec.Root); err != nil {
		fatal("%v", err)
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		fatal("chdir %s: %v", dir, err)
	}
	argv0, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "thinroot sandbox: %v\n", err)
		return 127
	}
	cmd := exec.Command(argv0)
	cmd.Args = spec.Argv
	cmd.Env = append(append([]string{}, DefaultEnv...), spec.Env...)
	if spec.Outside {
		cmd.Env = append([]string{}, spec.Env...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if spec.Stdin || spec.Interactive {
		cmd.Stdin = os.Stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(spec.UID), Gid: uint32(spec.GID), Groups: []uint32{}},
		// A build gets a session of its own; an interactive command stays
		// in the caller's, whose terminal is its controlling terminal.
		Setsid: !spec.Interactive,
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "thinroot sandbox: start %s: %v\n", spec.Argv[0], err)
		return 126
	}
	main := cmd.Process.Pid
	go func() {
		for s := range sigs {
			// Pass polite signals to the whole build session (or, for an
			// interactive command, which leads no group, to it).
			if spec.Interactive {
				syscall.Kill(main, s.(syscall.Signal))
			} else {
				syscall.Kill(-main, s.(syscall.Signal))
			}
		}
	}()
	// As pid 1 we inherit every orphan; reap them all, and remember the
	// main command's status.
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 125
		}
		if pid == main {
			// Returning ends pid 1, and the kernel kills whatever the
			// build left running.
			switch {
			case ws.Exited():
				return ws.ExitStatus()
			case ws.Signaled():
				return 128 + int(ws.Signal())
			}
			return 125
		}
	}
}

// lookPath resolves argv[0] inside the chroot with the build's PATH.
func lookPath(name string, env []string) (string, error) {
	if filepath.IsAbs(name) || filepath.Base(name) != name {
		return name, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
	for _, e := range env {
		if p, ok := cutPrefix(e, "PATH="); ok {
			path = p
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in the buildroot", name)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// enterRoot makes the buildroot the namespace's root with pivot_root and
// detaches the old root, so the namespace keeps no copy of the host's
// other mounts. A chroot would keep them all: other workdirs, pools, a
// base being bootstrapped would stay alive (their loop devices attached,
// removed volumes' space not freed, a base not written out on unmount)
// for as long as the build runs.
func enterRoot(root string) error {
	if err := os.Chdir(root); err != nil {
		return fmt.Errorf("enter %s: %w", root, err)
	}
	// With new and old root the same directory, the old root ends up on
	// top of the new one and is detached at once (pivot_root(2)).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's mounts: %w", err)
	}
	return os.Chdir("/")
}

// setupRoot mounts what a build needs inside the root. The mount
// namespace is private, so none of this is seen outside, and all of it
// goes away with the namespace.
// It is long because the mounts must be made in this order, and each
// reads best beside the reason it is there.
func setupRoot(spec Spec) error {
	// Stop our mounts from propagating back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := spec.Root
	// pivot_root needs the root to be a mount point of its own (a plain
	// directory, in tests, is not).
	if !spec.Outside {
		if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on itself: %w", root, err)
		}
	}
	in := func(p string) string { return filepath.Join(root, p) }
	mkdir := func(p string, mode os.FileMode) error {
		if err := os.MkdirAll(p, mode); err != nil {
			return err
		}
		return nil
	}
	if err := mkdir(in("proc"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", in("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	// /sys read-only, as mock mounts it.
	if err := mkdir(in("sys"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("sysfs", in("sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /sys: %w", err)
	}
	if err := setupDev(in("dev")); err != nil {
		return err
	}
	if !spec.Outside {
		// The package manager's scriptlets keep what they write to /tmp;
		// a build and a shell get a fresh one.
		if err := mkdir(in("tmp"), 0o1777); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", in("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return fmt.Errorf("mount /tmp: %w", err)
		}
	}
	if spec.HostResolver {
		for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
			if err := bindHostFile(root, f); err != nil {
				return err
			}
		}
	}
	for _, b := range spec.Binds {
		t := in(b.Target)
		fi, err := os.Stat(b.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
		if fi.IsDir() {
			err = mkdir(t, 0o755)
		} else {
			err = mkdir(filepath.Dir(t), 0o755)
			if err == nil {
				if f, ferr := os.OpenFile(t, os.O_CREATE|os.O_WRONLY, 0o644); ferr == nil {
					f.Close()
				}
			}
		}
		if err != nil {
			return fmt.Errorf("bind target %s: %w", b.Target, err)
		}
		if err := unix.Mount(b.Source, t, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
		if b.ReadOnly {
			if err := unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
				return fmt.Errorf("make %s read-only: %w", b.Target, err)
			}
		}
	}
	return nil
}

// bindHostFile binds the host's file f read-only over the root's, making
// an empty file there first when it has none. A root whose f is a
// symbolic link keeps it: mounting there would follow the link on the host.
func bindHostFile(root, f string) error {
	if _, err := os.Stat(f); err != nil {
		return nil // the host has none to give
	}
	t := filepath.Join(root, f)
	if fi, err := os.Lstat(t); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil
	} else if err != nil {
		if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
			return err
		}
		w, err := os.OpenFile(t, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("make %s in the root: %w", f, err)
		}
		w.Close()
	}
	if err := unix.Mount(f, t, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the host's %s: %w", f, err)
	}
	if err := unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", f, err)
	}
	return nil
}

// detachUnder detaches, from this namespace only, the host's mounts under
// spec.DetachUnder that an Outside command does not need: everything but
// the root, what is mounted under it, and the mounts holding a Keep path.
func detachUnder(spec Spec) error {
	if len(spec.DetachUnder) == 0 {
		return nil
	}
	table, err := mount.Table()
	if err != nil {
		return err
	}
	root := filepath.Clean(spec.Root)
	keep := append([]string{root}, spec.Keep...)
	var drop []string
	for _, e := range table {
		mp := e.Mountpoint
		if !underAny(mp, spec.DetachUnder) || within(mp, root) {
			continue
		}
		needed := false
		for _, k := range keep {
			if within(k, mp) {
				needed = true
			}
		}
		if !needed {
			drop = append(drop, mp)
		}
	}
	// Deepest first; a parent's detach takes its children along, so a
	// child already gone answers EINVAL.
	sort.Slice(drop, func(i, j int) bool { return len(drop[i]) > len(drop[j]) })
	for _, mp := range drop {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach %s: %w", mp, err)
		}
	}
	return nil
}

// within tells whether p is dir or lies under it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// underAny tells whether p lies strictly under one of dirs.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if d = filepath.Clean(d); p != d && within(p, d) {
			return true
		}
	}
	return false
}

// setupDev makes a minimal /dev on a tmpfs: the usual character devices,
// a private devpts and the fd links.
func setupDev(dev string) error {
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=1m"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	nodes := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, n := range nodes {
		if err := unix.Mknod(filepath.Join(dev, n.name), unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"); err != nil {
		return fmt.Errorf("mount devpts: %w", err)
	}
	links := map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return os.Mkdir(filepath.Join(dev, "shm"), 0o1777)
}

// loopbackUp brings up "lo" in the build's new network namespace, so
// builds can still talk to themselves.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
