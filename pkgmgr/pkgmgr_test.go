package pkgmgr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Main()
	os.Exit(testguard.Main(m))
}

// A dnf-based config like the ones mock ships.
const fedoraLike = `
config_opts['root'] = 'fedora-41-x86_64'
config_opts['target_arch'] = 'x86_64'
config_opts['releasever'] = '41'
config_opts['package_manager'] = '%PM%'
config_opts['chroot_setup_cmd'] = 'install @buildsys-build'
config_opts['chroot_additional_packages'] = 'vim-minimal'
config_opts['dnf_vars'] = {'stream': '41-rc'}
config_opts['dnf.conf'] = """
[main]
keepcache=1
reposdir=/dev/null

[fedora]
name=Fedora {{ releasever }}
baseurl=http://mirror.invalid/fedora/$releasever/$basearch/
        file:///srv/fedora/$stream/
enabled=1

[disabled]
baseurl=file:///nowhere
enabled=0

[local]
metalink=https://mirrors.invalid/metalink?repo=f$releasever&arch=$basearch
"""
`

func load(t *testing.T, text string) (*mockcfg.Config, mockcfg.Settings) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fedora-41-x86_64.cfg"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := (&mockcfg.Loader{ConfigDir: dir, Home: t.TempDir()}).Load("fedora-41-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, st
}

// pinHost makes the host have exactly the package managers in kinds.
func pinHost(t *testing.T, kinds ...string) {
	old := hostHas
	hostHas = func(kind, _ string) bool { return contains(kinds, kind) }
	t.Cleanup(func() { hostHas = old })
}

// Every sub-command's argv, in mock's order, with thinroot's options: the
// config file, the cache, the plugins (all off, builddep on for builddep
// only: "*" covers the config's dnf_disable_plugins, which dnf would warn
// about one by one) and -y.
func TestArgv(t *testing.T) {
	pinHost(t, DNF4, DNF5, Yum)
	for _, c := range []struct {
		pm   string
		args []string
		want string
	}{
		{"dnf", []string{"install", "@buildsys-build"},
			"/usr/bin/dnf-3 --installroot /R --releasever 41 -c C/dnf.conf --setopt=cachedir=C/dnf4 --setopt=keepcache=1 --disableplugin=* -y " +
				"--setopt=deltarpm=False --setopt=allow_vendor_change=yes --allowerasing install @buildsys-build"},
		{"dnf4", []string{"builddep", "/x.src.rpm"},
			"/usr/bin/dnf-3 builddep --installroot /R --releasever 41 -c C/dnf.conf --setopt=cachedir=C/dnf4 --setopt=keepcache=1 --disableplugin=* --enableplugin=builddep -y " +
				"--setopt=deltarpm=False --setopt=allow_vendor_change=yes --allowerasing /x.src.rpm"},
		{"dnf5", []string{"install", "gcc"},
			"/usr/bin/dnf5 --installroot /R --releasever 41 -c C/dnf.conf --setopt=cachedir=C/dnf5 --setopt=keepcache=1 -y install gcc " +
				"--setopt=deltarpm=False --setopt=allow_vendor_change=yes --allowerasing"},
		{"dnf5", []string{"remove", "gcc"}, // dnf5_avoid_opts leaves --allowerasing out of remove
			"/usr/bin/dnf5 --installroot /R --releasever 41 -c C/dnf.conf --setopt=cachedir=C/dnf5 --setopt=keepcache=1 -y remove gcc " +
				"--setopt=deltarpm=False --setopt=allow_vendor_change=yes"},
		{"yum", []string{"builddep", "/x.src.rpm"},
			"/usr/bin/yum-builddep --installroot /R --releasever 41 -c C/dnf.conf --setopt=cachedir=C/yum --setopt=keepcache=1 --disableplugin=* -y /x.src.rpm"},
	} {
		cfg, st := load(t, strings.ReplaceAll(fedoraLike, "%PM%", c.pm))
		s, err := FromConfig(cfg, st, "/cache")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.ReplaceAll(strings.Join(s.Argv("/R", c.args...), " "), "/cache/fedora-41-x86_64", "C")
		if got != c.want {
			t.Errorf("%s %v:\n got %s\nwant %s", c.pm, c.args, got, c.want)
		}
	}
}

// Offline configs use the cache only; forcearch and builddep options
// pass through; a config that disables builddep never gets it enabled.
func TestArgvOptions(t *testing.T) {
	pinHost(t, DNF4)
	text := strings.ReplaceAll(fedoraLike, "%PM%", "dnf") + `
config_opts['online'] = False
config_opts['forcearch'] = 'aarch64'
config_opts['dnf_builddep_opts'] = ['--skip-unavailable']
config_opts['dnf_disable_plugins'] = ['builddep']
`
	cfg, st := load(t, text)
	s, err := FromConfig(cfg, st, "/cache")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.Argv("/R", "builddep", "x.spec"), " ")
	for _, want := range []string{" -C ", "--forcearch aarch64", "--skip-unavailable x.spec", "--disableplugin=*"} {
		if !strings.Contains(got, want) {
			t.Errorf("argv lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "--enableplugin") {
		t.Errorf("a plugin the config disables was enabled: %s", got)
	}
	if !reflect.DeepEqual(s.SetupArgv(), [][]string{{"install", "@buildsys-build"}, {"install", "vim-minimal"}}) {
		t.Errorf("setup: %q", s.SetupArgv())
	}
}

// mock's fallback order when the host lacks the wanted package manager.
func TestFallback(t *testing.T) {
	pinHost(t, DNF4)
	cfg, st := load(t, strings.ReplaceAll(fedoraLike, "%PM%", "dnf5"))
	s, err := FromConfig(cfg, st, "/cache")
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != DNF4 || s.Wanted != DNF5 || s.Command != "/usr/bin/dnf-3" {
		t.Fatalf("dnf5 on a dnf4 host: kind %s wanted %s command %s", s.Kind, s.Wanted, s.Command)
	}
	st.PackageManager = "microdnf"
	if _, err := FromConfig(cfg, st, "/cache"); err == nil {
		t.Fatal("microdnf accepted")
	}
}

// Recorded output of Debian's dnf 4.14 (testdata/*.txt) parses into the
// names a user needs.
func TestParseFailure(t *testing.T) {
	for _, c := range []struct {
		file, op string
		missing  []string
		repo     string
		msg      string
	}{
		{"dnf4-install-no-match.txt", "install", []string{"nosuchpkg", "otherbad"}, "", "no package provides: nosuchpkg, otherbad"},
		{"dnf4-install-no-group.txt", "install", []string{"@nosuchgroup"}, "", "no package provides: @nosuchgroup"},
		{"dnf4-builddep-missing.txt", "builddep", []string{"another-missing", "no-such-br >= 2"}, "", "BuildRequires not met, no package provides: another-missing, no-such-br >= 2"},
		{"dnf4-builddep-version.txt", "builddep", []string{"bash >= 99"}, "", "bash >= 99"},
		{"dnf4-install-nothing-provides.txt", "install", []string{"ghost-lib >= 3"}, "", "ghost-lib >= 3"},
		{"dnf4-repo-unreachable.txt", "install", nil, "testdist", "repository testdist could not be loaded: Failed to download metadata"},
	} {
		out, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		e := ParseFailure(DNF4, c.op, 1, string(out))
		if !reflect.DeepEqual(e.Missing, c.missing) || e.Repo != c.repo {
			t.Errorf("%s: missing %q repo %q, want %q %q", c.file, e.Missing, e.Repo, c.missing, c.repo)
		}
		if !strings.Contains(e.Error(), c.msg) {
			t.Errorf("%s: message %q lacks %q", c.file, e.Error(), c.msg)
		}
		if e.ExitCode() != 30 {
			t.Errorf("%s: exit code %d", c.file, e.ExitCode())
		}
	}
	// yum's and dnf5's wording, from their sources' messages.
	e := ParseFailure(Yum, "install", 1, "No package foo available.\nError: Nothing to do\n")
	if !reflect.DeepEqual(e.Missing, []string{"foo"}) {
		t.Errorf("yum: %q", e.Missing)
	}
	e = ParseFailure(DNF5, "install", 1, "Failed to resolve the transaction:\nNo match for argument: bar\n")
	if !reflect.DeepEqual(e.Missing, []string{"bar"}) {
		t.Errorf("dnf5: %q", e.Missing)
	}
}

// The repositories of a dnf.conf: enabled ones only, URLs with the
// variables expanded.
func TestRepos(t *testing.T) {
	pinHost(t, DNF4)
	cfg, st := load(t, strings.ReplaceAll(fedoraLike, "%PM%", "dnf"))
	s, err := FromConfig(cfg, st, "/cache")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Repos()
	want := []Repo{
		{ID: "fedora", BaseURLs: []string{"http://mirror.invalid/fedora/41/x86_64/", "file:///srv/fedora/41-rc/"}},
		{ID: "local", Metalink: "https://mirrors.invalid/metalink?repo=f41&arch=x86_64"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("repos:\n got %+v\nwant %+v", got, want)
	}
}

// File repositories are hashed where they are, without running the
// package manager; the digest changes with any repomd.xml.
func TestRepoChecksumsLocal(t *testing.T) {
	dir := t.TempDir()
	for _, r := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, r, "repodata"), 0o755)
		os.WriteFile(filepath.Join(dir, r, "repodata", "repomd.xml"), []byte("<repomd "+r+"/>"), 0o644)
	}
	s := &Spec{Kind: DNF4, Command: "/bin/false", Online: true, CacheDir: t.TempDir(), Conf: `[main]
[a]
baseurl=file://` + dir + `/a
[b]
baseurl=file:///does/not/exist file://` + dir + `/b
`}
	ctx := context.Background()
	s1, err := s.RepoChecksums(ctx, "/", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Repos) != 2 || s1.Digest == "" {
		t.Fatalf("checksums: %+v", s1)
	}
	os.WriteFile(filepath.Join(dir, "b", "repodata", "repomd.xml"), []byte("<repomd b2/>"), 0o644)
	s2, err := s.RepoChecksums(ctx, "/", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Digest == s1.Digest || s2.Repos["a"] != s1.Repos["a"] {
		t.Fatalf("after a change of b: %+v, before %+v", s2, s1)
	}
}

// mock's files in the root: dnf.conf, the vars, no stray yum.repos.d.
func TestWriteRootConfig(t *testing.T) {
	pinHost(t, DNF4)
	cfg, st := load(t, strings.ReplaceAll(fedoraLike, "%PM%", "dnf"))
	s, err := FromConfig(cfg, st, "/cache")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc", "yum.repos.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "yum.repos.d", "stray.repo"), []byte("[x]"), 0o644)
	if err := s.WriteRootConfig(root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc", "dnf", "dnf.conf")); string(b) != s.Conf {
		t.Errorf("dnf.conf: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc", "dnf", "vars", "stream")); string(b) != "41-rc" {
		t.Errorf("vars: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "etc", "yum.repos.d", "stray.repo")); err == nil {
		t.Error("a stray repo file survived")
	}
}

func TestPyRepr(t *testing.T) {
	if got := PyRepr([]string{"dnf", "it's", `a\b`}); got != `['dnf', 'it\'s', 'a\\b']` {
		t.Errorf("PyRepr: %s", got)
	}
}

// Builds of one config prepare its cache at once: every writer of a file
// succeeds and leaves it whole.
func TestWriteIfChangedRace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dnf.conf")
	errs := make(chan error, 16)
	for i := range 16 {
		go func() { errs <- writeIfChanged(p, []byte(strings.Repeat("x", 1000+i%2)), 0o600) }()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(p); len(b) != 1000 && len(b) != 1001 {
		t.Fatalf("%d bytes", len(b))
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

// What dnf makes in the root for the host's cachedir goes after a run;
// the root's own directories on that path stay, also when empty. (Which
// directories a run's packages own is TestInstallIntoRoot's part: this
// root has no package database.)
func TestCleanRootKeepsTheRootsDirectories(t *testing.T) {
	root := t.TempDir()
	// rpm -qf looks the path up on the host first: the cache is real.
	s := &Spec{CacheDir: filepath.Join(t.TempDir(), "cache")}
	if err := os.MkdirAll(s.Cache().Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rel := s.cacheDirParts()
	if len(rel) < 3 {
		t.Fatalf("cache path %s too short for the test", s.Cache().Dir)
	}
	// The root has the first two directories of the path, the first
	// sticky like /tmp and /var/tmp.
	own := filepath.Join(root, rel[0], rel[1])
	if err := os.MkdirAll(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, rel[0]), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	had := s.cacheDirsIn(root)
	if had != 2 {
		t.Fatalf("cacheDirsIn = %d, want 2", had)
	}
	// What dnf writes for --setopt=cachedir= under --installroot.
	made := filepath.Join(root, s.Cache().Dir)
	if err := os.MkdirAll(made, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(made, "expired_repos.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cleanRoot(t.Context(), root, had)
	if _, err := os.Lstat(filepath.Join(own, rel[2])); err == nil {
		t.Error("the directories dnf made for the host's cachedir are left in the root")
	}
	if fi, err := os.Lstat(own); err != nil || !fi.IsDir() {
		t.Errorf("the root's own empty directory on the path went: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(root, rel[0])); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("the root's /%s after cleanRoot: %v, %v", rel[0], fi, err)
	}

	// A file of the root's own in the way is left alone.
	if err := os.WriteFile(filepath.Join(own, rel[2]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.cleanRoot(t.Context(), root, s.cacheDirsIn(root))
	if _, err := os.Lstat(filepath.Join(own, rel[2])); err != nil {
		t.Errorf("cleanRoot removed a file of the root's: %v", err)
	}
}

// A repository's cache directories are <id>-<16 hex digits>: another
// repository whose id starts with the same name is not one of them.
func TestCachedRepoDirs(t *testing.T) {
	s := &Spec{CacheDir: t.TempDir(), Kind: DNF4}
	for _, d := range []string{"fedora-0123456789abcdef", "fedora-cisco-openh264-0123456789abcdef", "fedora-012345", "fedora-0123456789abcdeg"} {
		if err := os.MkdirAll(filepath.Join(s.Cache().Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := s.cachedRepoDirs("fedora")
	if len(got) != 1 || filepath.Base(got[0]) != "fedora-0123456789abcdef" {
		t.Fatalf("fedora's cache directories: %v", got)
	}
}

// The cache lock waits while another run holds it, says so once, and
// gives up when the context ends; it is the same lock as internal/lock's,
// which the other thinroot processes take.
func TestCacheLockWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", "lock")
	first, err := lockCache(testguard.Context(t), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := lock.TryLock(path, true); h != nil || err != nil {
		t.Fatalf("the cache lock is not internal/lock's: TryLock took it (%v)", err)
	}
	var waited []string
	ctx, cancel := context.WithTimeout(testguard.Context(t), 200*time.Millisecond)
	defer cancel()
	_, err = lockCache(ctx, path, func(l string) { waited = append(waited, l) })
	if err == nil || !strings.Contains(err.Error(), "waiting for "+path) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a held lock: %v, want a deadline error naming %s", err, path)
	}
	if len(waited) != 1 || waited[0] != path {
		t.Errorf("waiting called with %q, want once with %s", waited, path)
	}
	first.Release()
	second, err := lockCache(testguard.Context(t), path, func(string) { t.Error("waited for a free lock") })
	if err != nil {
		t.Fatal(err)
	}
	second.Release()
}
