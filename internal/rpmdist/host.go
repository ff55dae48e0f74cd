package rpmdist

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Host runs the host's dnf and rpm on a root the way that works with
// Debian's packages, without changing the host's configuration:
//
//   - HOME is a private directory whose .rpmmacros sets %_dbpath
//     /var/lib/rpm. Debian's rpm keeps its database in ~/.rpmdb, so
//     without it the root's database lands in <root>/root/.rpmdb and
//     neither `rpm --root` nor rpm inside the root sees it. dnf reads the
//     macro through the rpm library, so this one setting serves both.
//   - dnf gets its own dnf.conf (-c) with reposdir=/dev/null, so no
//     repository of the host's is read, and the distribution as a
//     file:// baseurl with gpgcheck=0.
//   - every dnf plugin is off except builddep: Debian enables the local
//     plugin, which copies each downloaded package into the host's
//     /var/lib/dnf/plugins/local and offers it as the _dnf_local
//     repository to every later run, and generate_completion_cache, which
//     writes the host's /var/cache/dnf/packages.db.
//   - --setopt=cachedir= on the command line is a host path (in dnf.conf
//     it would be under the installroot); dnf still writes
//     <root><cachedir>/expired_repos.json.
//   - --releasever is given, as mock does: the root has no release
//     package to guess it from before the first install.
type Host struct {
	Dir   string // holds the files below
	Home  string // HOME for dnf and rpm: .rpmmacros
	Conf  string // dnf.conf
	Cache string // dnf's metadata cache
	// Releasever is passed to dnf as --releasever.
	Releasever string
}

// DNFConf is the dnf.conf text for a repository at url.
func DNFConf(url string) string {
	return `[main]
reposdir=/dev/null
gpgcheck=0
install_weak_deps=0
assumeyes=1
keepcache=0
metadata_expire=0
best=1
module_platform_id=platform:td` + Releasever + `
protected_packages=

[testdist]
name=thinroot testdist ` + Releasever + `
baseurl=` + url + `
gpgcheck=0
enabled=1
skip_if_unavailable=False
`
}

// NewHost writes what Host needs under dir, for the repository of d.
func (d *Dist) NewHost(dir string) (*Host, error) {
	h := &Host{
		Dir:        dir,
		Home:       filepath.Join(dir, "home"),
		Conf:       filepath.Join(dir, "dnf.conf"),
		Cache:      filepath.Join(dir, "cache"),
		Releasever: Releasever,
	}
	if err := os.MkdirAll(h.Home, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(h.Home, ".rpmmacros"), []byte("%_dbpath /var/lib/rpm\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(h.Conf, []byte(DNFConf(d.URL)), 0o644); err != nil {
		return nil, err
	}
	return h, nil
}

// env is the environment of dnf and rpm: the private HOME, the C locale.
func (h *Host) env() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "LC_") && !strings.HasPrefix(e, "LANG=") {
			env = append(env, e)
		}
	}
	return append(env, "HOME="+h.Home, "LC_ALL=C.UTF-8")
}

// DNFArgs is the argv of the host's dnf working on root, before the
// command (install, builddep, ...).
func (h *Host) DNFArgs(root string) []string {
	return []string{"dnf", "-c", h.Conf,
		"--disableplugin=*", "--enableplugin=builddep",
		"--setopt=cachedir=" + h.Cache,
		"--installroot", root, "--releasever", h.Releasever, "-y"}
}

// DNF returns the host's dnf working on root with args (install
// @buildsys-build, builddep X.src.rpm, ...).
func (h *Host) DNF(ctx context.Context, root string, args ...string) *exec.Cmd {
	argv := append(h.DNFArgs(root), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = h.env()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// RPM returns the host's rpm working on root's database with args.
func (h *Host) RPM(ctx context.Context, root string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "rpm", append([]string{"--root", root}, args...)...)
	cmd.Env = h.env()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// chrootScript runs in new mount and pid namespaces: it mounts /proc and a
// tmpfs /dev with the usual nodes in the root, then chroots and drops to
// the given uid and gid. The mounts belong to the namespace and go with it.
const chrootScript = `set -eu
R=$1 U=$2 G=$3; shift 3
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755,size=1m thinroot-dev "$R/dev"
node() { mknod -m 0666 "$R/dev/$1" c "$2" "$3"; }
node null 1 3; node zero 1 5; node full 1 7; node random 1 8; node urandom 1 9; node tty 5 0
ln -s /proc/self/fd "$R/dev/fd"
ln -s fd/0 "$R/dev/stdin"; ln -s fd/1 "$R/dev/stdout"; ln -s fd/2 "$R/dev/stderr"
mkdir "$R/dev/shm" "$R/dev/pts"
exec chroot --userspec="$U:$G" --groups="$G" "$R" "$@"
`

// Chroot returns a command that runs argv inside root as uid:gid, with a
// clean environment plus env, in new mount and pid namespaces (unshare)
// that hold the root's /proc and /dev for as long as it runs: nothing stays
// mounted afterwards, and killing it ends everything it started.
func Chroot(ctx context.Context, root string, uid, gid int, env []string, argv ...string) *exec.Cmd {
	inner := append([]string{"/usr/bin/env", "-i", "PATH=/usr/bin:/usr/sbin", "LANG=C.UTF-8"}, env...)
	args := append([]string{"--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
		"/bin/sh", "-c", chrootScript, "thinroot-chroot", root, fmt.Sprint(uid), fmt.Sprint(gid)}, append(inner, argv...)...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
