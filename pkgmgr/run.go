package pkgmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/sandbox"
)

// RunOptions say where a run's output goes and what its namespace keeps.
type RunOptions struct {
	// Out receives the package manager's output (mock's root.log).
	Out io.Writer
	// DetachUnder and Keep are passed to the sandbox: host mounts under
	// DetachUnder (the basedir of workdirs, the state directory of pools)
	// are detached from the run's namespace unless they hold a Keep path.
	DetachUnder, Keep []string
	// Waiting is called once when another run holds the cache lock.
	Waiting func(lock string)
}

// Run runs sub-command args[0] with args[1:] on root under the config's
// cache lock, in the sandbox's namespaces with root's /proc, /sys and /dev
// mounted. A failure is an *Error naming what could not be installed or
// loaded.
func (s *Spec) Run(ctx context.Context, root string, o RunOptions, args ...string) error {
	if len(args) == 0 {
		return errors.New("pkgmgr: no sub-command")
	}
	held, err := lockCache(ctx, s.Cache().Lock, o.Waiting)
	if err != nil {
		return err
	}
	defer held.Release()
	if err := s.prepare(); err != nil {
		return err
	}
	if err := s.reloadLocalRepos(ctx, root, o); err != nil {
		return err
	}
	return s.run(ctx, root, o, args...)
}

// run is Run under the cache lock.
func (s *Spec) run(ctx context.Context, root string, o RunOptions, args ...string) error {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	argv := s.Argv(root, args...)
	fmt.Fprintf(out, "Executing command: %s\n", PyRepr(argv))
	keep := append(append([]string{}, o.Keep...), s.CacheDir)
	for _, a := range args[1:] {
		if filepath.IsAbs(a) {
			keep = append(keep, a)
		}
	}
	keep = append(keep, s.localRepoDirs()...)
	cmd, err := sandbox.Command(ctx, sandbox.Spec{Root: root, Outside: true, Network: true, Argv: argv,
		Env: s.Env(), DetachUnder: o.DetachUnder, Keep: keep})
	if err != nil {
		return err
	}
	tail := &tailBuffer{max: 256 << 10}
	w := io.MultiWriter(out, tail)
	cmd.Stdout, cmd.Stderr = w, w
	had := s.cacheDirsIn(root)
	err = cmd.Run()
	s.cleanRoot(context.WithoutCancel(ctx), root, had)
	status := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		fmt.Fprintf(out, "Child was stopped: %v\n", context.Cause(ctx))
		return fmt.Errorf("%s %s: %w", s.Kind, args[0], context.Cause(ctx))
	case errors.As(err, &ee):
		status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	default:
		return fmt.Errorf("%s %s: %w", s.Kind, args[0], err)
	}
	fmt.Fprintf(out, "Child return code was: %d\n", status)
	if status == 0 {
		return nil
	}
	return ParseFailure(s.Kind, args[0], status, tail.String())
}

// Env is the package manager's environment: the host's PATH and proxy
// settings, the private HOME, and C.UTF-8 messages (the failure parser
// reads English).
func (s *Spec) Env() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + s.Cache().Home, "LC_ALL=C.UTF-8", "LANG=C.UTF-8"}
	for _, k := range []string{"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// prepare makes the cache directory, the private HOME's .rpmmacros and
// the dnf.conf the runs read.
func (s *Spec) prepare() error {
	c := s.Cache()
	for _, d := range []string{c.Dir, c.Home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("package cache: %w", err)
		}
	}
	if err := writeIfChanged(filepath.Join(c.Home, ".rpmmacros"), []byte(HostMacros()), 0o644); err != nil {
		return err
	}
	// The config's dnf.conf may hold repository credentials.
	return writeIfChanged(c.Conf, []byte(s.Conf), 0o600)
}

// HostMacros is the private HOME's .rpmmacros: mock's installation-time
// macro, and %_dbpath on a host whose rpm keeps its database under HOME.
func HostMacros() string {
	m := "%_netsharedpath /proc:/sys\n"
	if hostDBPathUnderHome() {
		m += "%_dbpath /var/lib/rpm\n"
	}
	return m
}

// hostDBPathUnderHome asks the host's rpm where a database goes when
// HOME is an empty directory: Debian's rpm says ~/.rpmdb.
var hostDBPathUnderHome = sync.OnceValue(func() bool {
	home, err := os.MkdirTemp("", "thinroot-rpm-home-")
	if err != nil {
		return true
	}
	defer os.RemoveAll(home)
	cmd := exec.Command("rpm", "--eval", "%{_dbpath}")
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	out, err := cmd.Output()
	if err != nil {
		return true
	}
	return strings.HasPrefix(strings.TrimSpace(string(out)), home)
})

// cacheDirsIn counts the leading components of the host cachedir's path
// that root already has as directories (var and var/tmp of a root for a
// cachedir under /var/tmp): those are the root's own, and cleanRoot must
// leave them.
func (s *Spec) cacheDirsIn(root string) int {
	p := root
	for i, c := range s.cacheDirParts() {
		p = filepath.Join(p, c)
		// Lstat: a symbolic link of the root's is never followed.
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			return i
		}
	}
	return len(s.cacheDirParts())
}

func (s *Spec) cacheDirParts() []string {
	return strings.Split(strings.Trim(filepath.Clean(s.Cache().Dir), "/"), "/")
}

// cleanRoot removes what dnf writes into the root for a host cachedir
// (<root><cachedir>/expired_repos.json) and the directories it made for
// it, so snapshots of the root carry nothing of the host's paths. It
// leaves the root's own directories on that path, even when empty: those
// it had before the run (had, from cacheDirsIn) and those a package of
// the run owns (the filesystem package's /tmp and /var/tmp, which dnf
// made first for a cachedir under them). Removing an empty /var/tmp broke
// rpmbuild in a root whose package cache lay under /var/tmp.
func (s *Spec) cleanRoot(ctx context.Context, root string, had int) {
	rel := s.cacheDirParts()
	if s.cacheDirsIn(root) != len(rel) {
		return
	}
	dir := func(n int) string { return filepath.Join(append([]string{root}, rel[:n]...)...) }
	os.Remove(filepath.Join(dir(len(rel)), "expired_repos.json"))
	keep := had
	for keep < len(rel) && ownedByPackage(ctx, root, "/"+strings.Join(rel[:keep+1], "/")) {
		keep++
	}
	for n := len(rel); n > keep; n-- {
		if os.Remove(dir(n)) != nil {
			return
		}
	}
}

// ownedByPackage tells whether a package installed in root owns path (rpm
// looks path up on the host first: the cachedir is there). When rpm cannot
// say, the answer is yes: a directory left behind is harmless, one of the
// root's removed is not. Most runs ask once; a bootstrap, twice.
func ownedByPackage(ctx context.Context, root, path string) bool {
	cmd, err := HostRPM(ctx, "-qf", "--root", root, "--qf", "%{NAME}\n", path)
	if err != nil {
		return true
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && strings.Contains(string(out), "is not owned by any package") {
		return false
	}
	return true
}

// localRepoDirs are the file:// repository directories of the config.
func (s *Spec) localRepoDirs() []string {
	var out []string
	for _, r := range s.Repos() {
		for _, u := range r.BaseURLs {
			if p, ok := strings.CutPrefix(u, "file://"); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// lockCache takes the cache's lock, waiting until ctx ends; waiting is
// called once when another run holds it.
func lockCache(ctx context.Context, path string, waiting func(string)) (*lock.Held, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	h, err := lock.Lock(ctx, path, true, func(lock.Holder) {
		if waiting != nil {
			waiting(path)
		}
	})
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("waiting for %s: %w", path, context.Cause(ctx))
	}
	return h, err
}

// PyRepr renders argv as Python prints a list of strings, the way mock's
// logs show commands.
func PyRepr(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(a) + "'"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
