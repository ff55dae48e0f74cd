package rpmroot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/thinroot/thinroot/sandbox"
)

// skeletonDirs are the directories mock makes in a fresh root before the
// package manager runs (buildroot.py _setup_dirs).
var skeletonDirs = []string{"var/lib/rpm", "var/lib/yum", "var/lib/dbus", "var/log", "var/cache/dnf",
	"var/cache/yum", "etc/rpm", "tmp", "tmp/ccache", "var/tmp", "etc/dnf", "etc/dnf/vars",
	"etc/yum.repos.d", "etc/yum", "proc", "sys"}

// BuildDirs are the directories of the build user's rpmbuild tree
// (buildroot.py _setup_build_dirs).
var BuildDirs = []string{"RPMS", "SPECS", "SRPMS", "SOURCES", "BUILD", "BUILDROOT", "originals"}

// in joins a path inside root, refusing to go through a symbolic link of
// the root's for the parent directories (a root's link would point into
// the host).
func in(root, p string) (string, error) {
	rel := strings.Trim(filepath.Clean("/"+p), "/")
	if rel == "" {
		return root, nil
	}
	parts := strings.Split(rel, "/")
	cur := root
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("%s in the root is a symbolic link", "/"+strings.TrimPrefix(cur, root+"/"))
		}
	}
	return filepath.Join(root, rel), nil
}

// SetupSkeleton makes mock's skeleton of a fresh root: its directories
// (with extra_chroot_dirs), the files it touches and /etc/mtab.
func (c *Config) SetupSkeleton(root string) error {
	dirs := append(append([]string{}, skeletonDirs...), c.ExtraDirs...)
	for _, d := range dirs {
		p, err := in(root, d)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"etc/fstab", "etc/yum/yum.conf", "etc/dnf/dnf.conf", "var/log/yum.log"} {
		if err := touch(root, f); err != nil {
			return err
		}
	}
	if p, err := in(root, "etc/yum.conf"); err == nil {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			os.Symlink("yum/yum.conf", p)
		}
	}
	if p, err := in(root, "etc/mtab"); err == nil {
		os.Remove(p)
		os.Symlink("../proc/self/mounts", p)
	}
	return nil
}

func touch(root, p string) error {
	q, err := in(root, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(q, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// WriteFiles writes config_opts['files'] that the root does not have yet,
// and mock's defaults of the resolver: a hosts file that resolves
// localhost and an empty resolv.conf (a build with the network gets the
// host's, bound over them by the sandbox, never copied in).
func (c *Config) WriteFiles(root string) error {
	files := map[string]string{}
	for k, v := range c.Files {
		files[strings.TrimPrefix(k, "/")] = v
	}
	if _, ok := files["etc/hosts"]; !ok {
		files["etc/hosts"] = "127.0.0.1 localhost localhost.localdomain\n::1       localhost localhost.localdomain localhost6 localhost6.localdomain6\n"
	}
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := in(root, k)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(files[k]), 0o644); err != nil {
			return err
		}
	}
	p, err := in(root, "etc/resolv.conf")
	if err != nil {
		return err
	}
	os.Remove(p)
	return os.WriteFile(p, nil, 0o644)
}

// SetupIdentity writes what mock gives a fresh root once its packages are
// in: a machine id, the host's time zone, /etc/os-release touched.
func SetupIdentity(root string) error {
	var id [16]byte
	rand.Read(id[:])
	p, err := in(root, "etc/machine-id")
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(hex.EncodeToString(id[:])+"\n"), 0o444); err != nil {
		return err
	}
	if q, err := in(root, "var/lib/dbus/machine-id"); err == nil {
		if _, err := os.Lstat(q); errors.Is(err, fs.ErrNotExist) {
			os.MkdirAll(filepath.Dir(q), 0o755)
			os.Symlink("../../../etc/machine-id", q)
		}
	}
	if q, err := in(root, "etc/localtime"); err == nil {
		if target, err := os.Readlink("/etc/localtime"); err == nil {
			os.Remove(q)
			os.Symlink(target, q)
		} else if b, err := os.ReadFile("/etc/localtime"); err == nil {
			os.Remove(q)
			os.WriteFile(q, b, 0o644)
		}
	}
	return touch(root, "etc/os-release")
}

// userOK tells whether the root's /etc/passwd and /etc/group already have
// the build user and group with these ids and home.
func (c *Config) userOK(root string, uid, gid int) bool {
	pw, err1 := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	gr, err2 := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err1 != nil || err2 != nil {
		return false
	}
	user, group := false, false
	for _, l := range strings.Split(string(pw), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 7 && f[0] == c.User {
			user = f[2] == strconv.Itoa(uid) && f[3] == strconv.Itoa(gid) && f[5] == c.Home && !strings.HasPrefix(f[1], "!!")
		}
	}
	for _, l := range strings.Split(string(gr), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == c.Group {
			group = f[2] == strconv.Itoa(gid)
		}
	}
	return user && group
}

// EnsureUser makes the build user and group as mock does (_make_users:
// userdel, groupdel, groupadd -g GID, useradd -o -u UID -g GID -N -d HOME,
// with the host's tools and --prefix unless use_host_shadow_utils is off),
// unless the root already has them with these ids. It tells whether it
// changed anything.
func (c *Config) EnsureUser(ctx context.Context, root string, uid, gid int, out io.Writer) (bool, error) {
	if c.userOK(root, uid, gid) {
		return false, nil
	}
	run := func(canFail bool, argv ...string) error {
		var cmd *exec.Cmd
		if c.HostShadowUtils {
			cmd = exec.CommandContext(ctx, argv[0], append(argv[1:], c.IsolationOption, root)...)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8"}
		} else {
			var err error
			cmd, err = sandbox.Command(ctx, sandbox.Spec{Root: root, Argv: argv})
			if err != nil {
				return err
			}
		}
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		err := cmd.Run()
		if out != nil && b.Len() > 0 {
			out.Write(b.Bytes())
		}
		if err != nil && !canFail {
			return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(b.String()))
		}
		return nil
	}
	run(true, "userdel", "-f", c.User)
	run(true, "groupdel", c.Group)
	if err := run(false, "groupadd", c.Group, "-g", strconv.Itoa(gid)); err != nil {
		return true, err
	}
	if err := run(false, "useradd", c.User, "-o", "-u", strconv.Itoa(uid), "-g", strconv.Itoa(gid), "-N", "-d", c.Home); err != nil {
		return true, err
	}
	return true, c.enableAccount(root)
}

// enableAccount removes a "!!" lock from the build user's passwd entry,
// as mock's _enable_chrootuser_account.
func (c *Config) enableAccount(root string) error {
	p := filepath.Join(root, "etc", "passwd")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	changed := false
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 1 && f[0] == c.User && strings.HasPrefix(f[1], "!!") {
			f[1] = f[1][2:]
			lines[i] = strings.Join(f, ":")
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
}

// PrepareHome makes the build user's home dir (a path on the host: the
// root's chroothome, or a scratch directory bound there) ready for a
// build as mock does: with cleanup, everything in it but
// exclude_from_homedir_cleanup is removed first; then the rpmbuild tree
// and the .rpmmacros of the config's macros and extra, all owned by
// uid:gid.
func (c *Config) PrepareHome(dir string, uid, gid int, extra [][2]string, cleanup bool) error {
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link", dir)
	}
	if cleanup {
		if err := cleanTree(dir, "", c.HomeCleanupExclude); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		return err
	}
	for _, d := range append([]string{"", "build"}, prefixed("build/", BuildDirs)...) {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	mf := filepath.Join(dir, ".rpmmacros")
	os.Remove(mf)
	if err := os.WriteFile(mf, []byte(c.MacrosFile(extra)), 0o644); err != nil {
		return err
	}
	return os.Lchown(mf, uid, gid)
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// cleanTree removes everything under dir except the paths (relative to
// the home) in keep and the directories leading to them.
func cleanTree(dir, rel string, keep []string) error {
	ents, err := os.ReadDir(filepath.Join(dir, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		r := filepath.Join(rel, e.Name())
		kept, parent := false, false
		for _, k := range keep {
			k = filepath.Clean(k)
			if r == k {
				kept = true
			} else if strings.HasPrefix(k, r+"/") {
				parent = true
			}
		}
		switch {
		case kept:
		case parent && e.IsDir():
			if err := cleanTree(dir, r, keep); err != nil {
				return err
			}
		default:
			if err := os.RemoveAll(filepath.Join(dir, r)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ChownTree gives everything under dir to uid:gid, never following a
// symbolic link (mock's chown_home_dir).
func ChownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// MarkInitialized touches /.initialized, mock's mark of a finished init.
func MarkInitialized(root string) error { return touch(root, ".initialized") }
