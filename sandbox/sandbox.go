// Package sandbox runs a command inside a buildroot in new mount, pid, ipc
// and uts namespaces (and a new network namespace unless the build may use
// the network), as an unprivileged user.
//
// It mounts what mock mounts in a buildroot: /proc, /sys read-only, a
// minimal /dev with a private devpts, a tmpfs /tmp, and with the network
// the host's /etc/resolv.conf and /etc/hosts (read-only binds). A command
// may also run outside the root (Spec.Outside): a package manager that
// works on the root with --installroot then finds the same /proc, /sys and
// /dev in it, and they go away with its namespace too.
//
// The parent re-executes its own binary with a marker argument; that child
// starts as pid 1 of the new pid namespace, builds the root's mounts (proc,
// a minimal /dev, tmpfs /tmp, bind mounts) in its private mount namespace,
// chroots, and runs the command as the build user, reaping every process
// and passing its exit status back. Killing that pid 1 kills the whole
// namespace, so a cancelled or timed-out build leaves no process behind,
// and its mounts vanish with the namespace.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/internal/cgroup"
)

// Marker is the first argument that turns a thinroot process into the
// sandbox's init. Main must run before anything else in main().
const Marker = "__thinroot-sandbox"

// Bind is a host path made visible inside the root.
type Bind struct {
	Source   string `json:"source"`
	Target   string `json:"target"` // absolute path inside the root
	ReadOnly bool   `json:"read_only"`
}

// Spec says what to run and how.
type Spec struct {
	Root     string   `json:"root"` // the buildroot to chroot into
	Argv     []string `json:"argv"`
	Env      []string `json:"env,omitempty"`
	Dir      string   `json:"dir,omitempty"` // working directory inside (default /)
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Hostname string   `json:"hostname,omitempty"`
	// Network shares the host's network; otherwise the build gets a new
	// network namespace with only a loopback interface.
	Network bool   `json:"network"`
	Binds   []Bind `json:"binds,omitempty"`
	// HostResolver binds the host's /etc/resolv.conf and /etc/hosts
	// read-only over the root's (mock does this when the network is
	// allowed and use_host_resolv is set). A root whose file there is a
	// symbolic link keeps its own.
	HostResolver bool `json:"host_resolver,omitempty"`

	// Outside runs Argv on the host's file system instead of inside Root,
	// with Root's /proc, /sys and /dev set up as for a command inside: for
	// a package manager that installs into Root with --installroot, whose
	// scriptlets run chrooted there. Env is then the whole environment.
	Outside bool `json:"outside,omitempty"`
	// DetachUnder lists host directories under which the host's mounts
	// are detached from an Outside command's namespace, except Root, the
	// mounts under it and those holding a path of Keep. The namespace
	// starts with a copy of every host mount; without this a long package
	// manager run would keep other workdirs' file systems (and their
	// volumes) alive after the host unmounted them.
	DetachUnder []string `json:"detach_under,omitempty"`
	Keep        []string `json:"keep,omitempty"`

	// Stdin gives the command the caller's standard input (the sandbox
	// otherwise reads /dev/null).
	Stdin bool `json:"stdin,omitempty"`
	// Interactive keeps the command in the caller's session and process
	// group, so that a terminal on standard input stays its controlling
	// terminal and job control works (an interactive shell). Implies Stdin.
	Interactive bool `json:"interactive,omitempty"`

	// Cgroup lists the cgroup.procs files the sandbox's init joins before
	// it starts anything, so every process of the command is in its
	// group (cgroup.Group.Procs). Command fills it from the context's
	// group when unset.
	Cgroup []string `json:"cgroup,omitempty"`
}

// DefaultEnv is the environment a build starts from.
var DefaultEnv = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
	"HOME=/builddir",
	"LANG=C.UTF-8",
	"SHELL=/bin/sh",
	"TERM=dumb",
}

// Command prepares the sandbox for spec. The caller sets Stdout/Stderr,
// starts it and waits; cancelling ctx kills the sandbox's init, and with it
// every process of the build.
func Command(ctx context.Context, spec Spec) (*exec.Cmd, error) {
	if len(spec.Argv) == 0 {
		return nil, errors.New("sandbox: empty command")
	}
	if !filepath.IsAbs(spec.Root) {
		return nil, fmt.Errorf("sandbox: root %q is not absolute", spec.Root)
	}
	for _, b := range spec.Binds {
		if !filepath.IsAbs(b.Target) || strings.Contains(b.Target, "..") {
			return nil, fmt.Errorf("sandbox: bind target %q must be absolute and plain", b.Target)
		}
	}
	if g := cgroup.FromContext(ctx); g != nil && spec.Cgroup == nil {
		spec.Cgroup = g.Procs()
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, Marker, string(data))
	cmd.Env = []string{}
	cmd.Dir = "/"
	if spec.Stdin || spec.Interactive {
		cmd.Stdin = os.Stdin
	}
	flags := syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	if !spec.Network {
		flags |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: uintptr(flags),
		Pdeathsig:  syscall.SIGKILL, // the daemon dying takes its builds down
	}
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// Main turns this process into the sandbox's init when it was started as
// one, and never returns then. Otherwise it does nothing.
func Main() {
	if len(os.Args) < 3 || os.Args[1] != Marker {
		return
	}
	var spec Spec
	if err := json.Unmarshal([]byte(os.Args[2]), &spec); err != nil {
		fatal("bad spec: %v", err)
	}
	os.Exit(runInit(spec))
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "thinroot sandbox: "+format+"\n", args...)
	os.Exit(125)
}
