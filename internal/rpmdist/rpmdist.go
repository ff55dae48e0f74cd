// Package rpmdist is test support: it provides the local RPM distribution
// ("testdist") that thinroot's RPM-build tests install buildroots from,
// since this project's machines cannot reach Fedora's repositories.
//
// The distribution is built at test time from the Debian packages installed
// on the host by testdata/rpmdist/build.py (README.md there says what it
// holds and the host-side facts the product relies on), and cached under
// CacheRoot/<key>, where key hashes the recipe and the versions of the
// Debian packages it uses. Ensure builds it or reuses it; processes that
// race for it take a lock, and a build happens in a temporary directory
// renamed into place, so a reader never sees half a repository.
package rpmdist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
)

// CacheRoot holds the built distributions, one directory per key, and the
// stable names of the current one.
const CacheRoot = "/var/cache/thinroot-testdist"

// Stable paths of the most recently ensured distribution (symlinks through
// CacheRoot/current, replaced atomically): what a checked-in config such as
// testdata/configs/testdist-x86_64.cfg names.
const (
	StableRepo        = CacheRoot + "/repo"
	StableVariantRepo = CacheRoot + "/repo-v2"
	StableSRPMs       = CacheRoot + "/srpms"
)

// Releasever is the distribution's release (dnf's --releasever, mock's
// releasever); its %dist is ".td1".
const Releasever = "1"

// Test source packages in srpms/, by name.
const (
	SRPMTiny   = "thinroot-test-tiny"   // BuildRequires: thinroot-test-dep (only in this repository)
	SRPMDynBR  = "thinroot-test-dynbr"  // %generate_buildrequires prints thinroot-test-dep
	SRPMFail   = "thinroot-test-fail"   // %build exits 1, saying THINROOT-TEST-FAIL
	SRPMManyBR = "thinroot-test-manybr" // fourteen BuildRequires
	SRPMCC     = "thinroot-test-cc"     // compiles C for tens of seconds; macros cc_funcs, cc_rounds
)

// FailMarker is what thinroot-test-fail prints before it fails.
const FailMarker = "THINROOT-TEST-FAIL"

// layout changes whenever this package reads the built tree differently,
// so that a change invalidates older caches.
const layout = "1"

// Dist is one built distribution: a repository and the test SRPMs.
type Dist struct {
	Key     string // the cache key
	Dir     string // CacheRoot/<key>: repo, repo-v2, srpms, build.log, debian-packages.txt
	RepoDir string // the yum repository: the RPMs and repodata/ (with the comps groups)
	URL     string // file:// URL of RepoDir, for a dnf.conf baseurl
	// SRPMs maps a test source package's name (SRPMTiny, ...) to its path.
	SRPMs map[string]string
	// TestDepRelease is the release of thinroot-test-dep in RepoDir: "1",
	// or "2" in the variant.
	TestDepRelease string

	cacheRoot string
}

// Ensure returns the distribution for this host and recipe, building it
// into CacheRoot when it is not there yet. Build output goes to logw (and
// to build.log in the distribution's directory).
func Ensure(ctx context.Context, logw io.Writer) (*Dist, error) {
	return EnsureIn(ctx, CacheRoot, logw)
}

// EnsureIn is Ensure with another cache directory (tests of the cache
// itself use a temporary one). Only CacheRoot gets the stable names.
func EnsureIn(ctx context.Context, cacheRoot string, logw io.Writer) (*Dist, error) {
	if logw == nil {
		logw = io.Discard
	}
	recipe, err := RecipeDir()
	if err != nil {
		return nil, err
	}
	for _, tool := range []string{"python3", "dpkg-query", "rpmbuild", "createrepo_c"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("rpmdist: %s is missing (scripts/deps.sh installs it)", tool)
		}
	}
	key, err := cacheKey(ctx, recipe)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheRoot, key)
	if !complete(dir) {
		if err := buildLocked(ctx, recipe, cacheRoot, key, logw); err != nil {
			return nil, err
		}
		prune(cacheRoot, key, logw)
	} else {
		fmt.Fprintf(logw, "rpmdist: reusing %s\n", dir)
		// The directory's mtime says when it was last used (see prune).
		now := time.Now()
		os.Chtimes(dir, now, now)
	}
	d, err := open(cacheRoot, key, "repo", "1")
	if err != nil {
		return nil, err
	}
	if cacheRoot == CacheRoot {
		if err := publish(cacheRoot, key); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Variant is the same distribution with a new release of
// thinroot-test-dep: another repository directory, whose repomd.xml
// differs, for tests that must notice a changed repository.
func (d *Dist) Variant(ctx context.Context) (*Dist, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return open(d.cacheRoot, d.Key, "repo-v2", "2")
}

// SRPM returns the path of a test source package, or "" if there is none
// of that name.
func (d *Dist) SRPM(name string) string { return d.SRPMs[name] }

// RepomdXML returns the repository's repodata/repomd.xml.
func (d *Dist) RepomdXML() ([]byte, error) {
	return os.ReadFile(filepath.Join(d.RepoDir, "repodata", "repomd.xml"))
}

// DebianPackages lists the Debian packages the distribution was made from,
// as "name version" lines.
func (d *Dist) DebianPackages() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(d.Dir, "debian-packages.txt"))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

// RecipeDir finds testdata/rpmdist: $THINROOT_REPO/testdata/rpmdist, or
// the one in the module above the working directory (go test runs in the
// package's directory).
func RecipeDir() (string, error) {
	if r := os.Getenv("THINROOT_REPO"); r != "" {
		return filepath.Join(r, "testdata", "rpmdist"), nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testdata", "rpmdist"), nil
		}
		if d == "/" {
			return "", fmt.Errorf("rpmdist: no go.mod above %s (set THINROOT_REPO)", wd)
		}
	}
}

// cacheKey hashes the recipe's files (not its README), the Debian packages
// build.py would use, with their versions, and the createrepo_c that
// writes the metadata.
func cacheKey(ctx context.Context, recipe string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "layout %s\n", layout)
	var files []string
	err := filepath.WalkDir(recipe, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && !strings.HasSuffix(p, ".md") && !strings.Contains(p, "__pycache__") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("rpmdist: read the recipe: %w", err)
	}
	sort.Strings(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(recipe, p)
		fmt.Fprintf(h, "file %s %d\n", rel, len(b))
		h.Write(b)
	}
	cmd := exec.CommandContext(ctx, "python3", filepath.Join(recipe, "build.py"), "closure")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("rpmdist: build.py closure: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	h.Write(out)
	v, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Package} ${Version}\n", "createrepo-c").Output()
	if err != nil {
		return "", fmt.Errorf("rpmdist: the createrepo-c package: %v (scripts/deps.sh installs it)", err)
	}
	h.Write(v)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// complete says whether dir is a finished distribution. A build is renamed
// into place only when done, so the directory's existence says it; the
// check of the metadata catches a tree someone removed files from.
func complete(dir string) bool {
	for _, repo := range []string{"repo", "repo-v2"} {
		if _, err := os.Stat(filepath.Join(dir, repo, "repodata", "repomd.xml")); err != nil {
			return false
		}
	}
	return true
}

// buildLocked builds the distribution of key under the key's lock, unless
// another process finished it while this one waited.
func buildLocked(ctx context.Context, recipe, cacheRoot, key string, logw io.Writer) error {
	held, err := lockKey(ctx, filepath.Join(cacheRoot, ".lock-"+key), logw)
	if err != nil {
		return err
	}
	defer held.Release()
	dir := filepath.Join(cacheRoot, key)
	if complete(dir) {
		fmt.Fprintf(logw, "rpmdist: %s was built by another process\n", dir)
		return nil
	}
	// Under the lock, leftovers of this key are from a killed build.
	stale, _ := filepath.Glob(filepath.Join(cacheRoot, ".tmp-"+key+"-*"))
	for _, s := range stale {
		fmt.Fprintf(logw, "rpmdist: removing %s, left by an interrupted build\n", s)
		os.RemoveAll(s)
	}
	if _, err := os.Lstat(dir); err == nil {
		fmt.Fprintf(logw, "rpmdist: removing incomplete %s\n", dir)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(cacheRoot, ".tmp-"+key+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "dist")
	logf, err := os.Create(filepath.Join(tmp, "build.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	w := io.MultiWriter(logw, logf)
	fmt.Fprintf(w, "rpmdist: building %s (key %s) from %s\n", dir, key, recipe)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "python3", filepath.Join(recipe, "build.py"), "build", out)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	// build.py's rpmbuilds are its children: kill the group on cancel.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rpmdist: build.py build: %w (log above)", err)
	}
	fmt.Fprintf(w, "rpmdist: built in %.1fs\n", time.Since(start).Seconds())
	if err := logf.Sync(); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "build.log"), filepath.Join(out, "build.log")); err != nil {
		return err
	}
	if err := syncTree(out); err != nil {
		return err
	}
	if err := os.Rename(out, dir); err != nil {
		return err
	}
	return syncDir(cacheRoot)
}

// PruneAge is how long a distribution of another key stays in the cache
// unused before a build of a new one removes it.
const PruneAge = 7 * 24 * time.Hour

// prune removes the distributions of other keys that no Ensure has used
// for PruneAge (recipes change, hosts get updates), each under its lock so
// a build of that key is never cut short.
func prune(cacheRoot, keep string, logw io.Writer) {
	ents, err := os.ReadDir(cacheRoot)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || name == keep || len(name) != 16 || strings.Trim(name, "0123456789abcdef") != "" {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < PruneAge {
			continue
		}
		lockPath := filepath.Join(cacheRoot, ".lock-"+name)
		held, err := lock.TryLock(lockPath, true)
		if err != nil || held == nil {
			continue
		}
		fmt.Fprintf(logw, "rpmdist: removing %s, unused since %s\n", name, info.ModTime().Format(time.RFC3339))
		// The lock file stays: removing it would let two processes lock
		// different files of one name.
		os.RemoveAll(filepath.Join(cacheRoot, name))
		held.Release()
	}
}

// lockKey takes the lock of a key's build, waiting (and saying so) while
// another process holds it, until ctx ends.
func lockKey(ctx context.Context, path string, logw io.Writer) (*lock.Held, error) {
	h, err := lock.Lock(ctx, path, true, func(lock.Holder) {
		fmt.Fprintf(logw, "rpmdist: waiting for %s (another process is building)\n", path)
	})
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("rpmdist: waiting for %s: %w", path, ctx.Err())
	}
	return h, err
}

// open describes the built distribution of key with the given repository.
func open(cacheRoot, key, repo, depRelease string) (*Dist, error) {
	dir := filepath.Join(cacheRoot, key)
	d := &Dist{
		Key:            key,
		Dir:            dir,
		RepoDir:        filepath.Join(dir, repo),
		URL:            "file://" + filepath.Join(dir, repo),
		SRPMs:          map[string]string{},
		TestDepRelease: depRelease,
		cacheRoot:      cacheRoot,
	}
	srpms, err := filepath.Glob(filepath.Join(dir, "srpms", "*.src.rpm"))
	if err != nil || len(srpms) == 0 {
		return nil, fmt.Errorf("rpmdist: no SRPMs in %s", dir)
	}
	for _, p := range srpms {
		// NAME-VERSION-RELEASE.src.rpm
		f := strings.Split(strings.TrimSuffix(filepath.Base(p), ".src.rpm"), "-")
		if len(f) >= 3 {
			d.SRPMs[strings.Join(f[:len(f)-2], "-")] = p
		}
	}
	if _, err := os.Stat(filepath.Join(d.RepoDir, "repodata", "repomd.xml")); err != nil {
		return nil, fmt.Errorf("rpmdist: %w", err)
	}
	return d, nil
}

// tmpSeq tells apart the temporary names of goroutines publishing at once.
var tmpSeq atomic.Uint64

// publish points CacheRoot/current at key and makes sure repo, repo-v2 and
// srpms are symlinks through it. Each name is replaced by a rename, so a
// reader sees the old target or the new one.
func publish(cacheRoot, key string) error {
	links := [][2]string{{"current", key}, {"repo", "current/repo"}, {"repo-v2", "current/repo-v2"}, {"srpms", "current/srpms"}}
	for _, l := range links {
		path := filepath.Join(cacheRoot, l[0])
		if old, err := os.Readlink(path); err == nil && old == l[1] {
			continue
		}
		tmp := filepath.Join(cacheRoot, fmt.Sprintf(".%s.tmp-%d-%d", l[0], os.Getpid(), tmpSeq.Add(1)))
		os.Remove(tmp)
		if err := os.Symlink(l[1], tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	return syncDir(cacheRoot)
}

// syncTree fsyncs every file and directory under root, so the rename that
// publishes it cannot outlive its contents in a crash.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !e.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ReadRPMNames lists the names of the packages in a repository directory,
// from the RPM file names (NAME-VERSION-RELEASE.ARCH.rpm).
func ReadRPMNames(repoDir string) ([]string, error) {
	ents, err := os.ReadDir(repoDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".rpm") {
			continue
		}
		f := strings.Split(n, "-")
		if len(f) >= 3 {
			names = append(names, strings.Join(f[:len(f)-2], "-"))
		}
	}
	sort.Strings(names)
	return names, nil
}
