package pkgmgr

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/rpmdist"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/mockcfg"
)

// testdist loads the test distribution's mock config with a cache in a
// temporary directory.
func testdist(t *testing.T) (*rpmdist.Dist, *Spec) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs into a root with the host's dnf in the sandbox's namespaces (CI runs as root)")
	}
	ctx := testguard.Context(t)
	d, err := rpmdist.Ensure(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := d.WriteMockConfig(dir, "testdist-x86_64"); err != nil {
		t.Fatal(err)
	}
	cfg, err := (&mockcfg.Loader{ConfigDir: dir, Home: t.TempDir()}).Load("testdist-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromConfig(cfg, st, filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

// The host's dnf installs @buildsys-build into an empty root in the
// sandbox's namespaces: the host's rpm lists the root's packages from
// <root>/var/lib/rpm, the cache is the config's, nothing is left mounted
// or written into the root for the host's cache path; an install of a
// package nobody has fails with its name.
func TestInstallIntoRoot(t *testing.T) {
	_, s := testdist(t)
	ctx := testguard.Context(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := s.Run(ctx, root, RunOptions{Out: &log}, s.SetupCmd...); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "Executing command: ['/usr/bin/dnf-3', '--installroot'") || !strings.Contains(log.String(), "Complete!") {
		t.Errorf("the log lacks the command or dnf's output:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(root, "var", "lib", "rpm", "rpmdb.sqlite")); err != nil {
		t.Errorf("no rpm database in /var/lib/rpm: %v", err)
	}
	list, err := InstalledPackages(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(list), "\nbash-") && !strings.HasPrefix(string(list), "bash-") {
		t.Errorf("installed packages lack bash:\n%s", list)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		if f := strings.Fields(l); len(f) != 4 || f[3] != "installed" {
			t.Fatalf("not mock's installed_pkgs.log format: %q", l)
		}
	}
	if ms := testguard.Mounted(root); len(ms) != 0 {
		t.Errorf("left mounted: %v", ms)
	}
	if _, err := os.Stat(filepath.Join(root, s.Cache().Dir)); err == nil {
		t.Errorf("the host's cache path was left in the root")
	}
	// The root's own directories on the cache path stay, empty or not
	// (the cache lies under TMPDIR: /tmp, or /var/tmp on some hosts).
	for _, d := range []string{"tmp", "var/tmp"} {
		if strings.HasPrefix(s.Cache().Dir, "/"+d+"/") {
			if fi, err := os.Lstat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
				t.Errorf("the root's /%s is gone after a run whose cache lies under it: %v", d, err)
			}
		}
	}
	if ents, _ := os.ReadDir(s.Cache().Dir); len(ents) == 0 {
		t.Errorf("nothing in the config's cache %s", s.Cache().Dir)
	}

	log.Reset()
	err = s.Run(ctx, root, RunOptions{Out: &log}, "install", "no-such-package")
	var pe *Error
	if !errors.As(err, &pe) || len(pe.Missing) != 1 || pe.Missing[0] != "no-such-package" {
		t.Fatalf("install of a missing package: %v\n%s", err, log.String())
	}
	if !strings.Contains(err.Error(), "no-such-package") {
		t.Errorf("the error does not name the package: %v", err)
	}
}

// A repository that cannot be read is named in the error.
func TestRepoFailure(t *testing.T) {
	_, s := testdist(t)
	ctx := testguard.Context(t)
	s.Conf = strings.Replace(s.Conf, "baseurl=file://", "baseurl=file:///nonexistent", 1)
	root := t.TempDir()
	var log bytes.Buffer
	err := s.Run(ctx, root, RunOptions{Out: &log}, "install", "bash")
	var pe *Error
	if !errors.As(err, &pe) || pe.Repo != "testdist" {
		t.Fatalf("unreadable repository: %v\n%s", err, log.String())
	}
}

// Header reads a source package's BuildRequires and tells dynamic ones.
func TestReadHeader(t *testing.T) {
	d, _ := testdist(t)
	ctx := testguard.Context(t)
	h, err := ReadHeader(ctx, d.SRPM(rpmdist.SRPMTiny))
	if err != nil {
		t.Fatal(err)
	}
	if h.NVR() != "thinroot-test-tiny-1.0-1" || !h.Source || h.Dynamic || len(h.Requires) != 1 || h.Requires[0] != "thinroot-test-dep" {
		t.Fatalf("tiny: %+v", h)
	}
	h, err = ReadHeader(ctx, d.SRPM(rpmdist.SRPMDynBR))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Dynamic || len(h.Requires) != 0 {
		t.Fatalf("dynbr: %+v", h)
	}
}

// A local repository rebuilt after a run is read again by the next run,
// whatever dnf's metadata_expire says: the builddep snapshots are keyed
// on the repository's repomd.xml as it is now, so dnf must install from
// that and not from its cached copy (a stale copy once installed a
// package that was no longer there).
func TestLocalRepoChangeSeenAtOnce(t *testing.T) {
	d, s := testdist(t)
	ctx := testguard.Context(t)
	v, err := d.Variant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "repo")
	if err := os.Symlink(d.RepoDir, link); err != nil {
		t.Fatal(err)
	}
	s.Conf = strings.Replace(s.Conf, "baseurl=file://"+d.RepoDir, "baseurl=file://"+link, 1)
	if !strings.Contains(s.Conf, link) {
		t.Fatalf("the config does not name the repository %s:\n%s", d.RepoDir, s.Conf)
	}
	// An hour: without a refresh, the second run would trust the cache.
	s.Conf = strings.Replace(s.Conf, "metadata_expire=0\n", "metadata_expire=3600\n", 1)
	if !strings.Contains(s.Conf, "metadata_expire=3600") {
		t.Fatalf("the config sets no metadata_expire:\n%s", s.Conf)
	}
	install := func(want string) {
		t.Helper()
		root := t.TempDir()
		var log bytes.Buffer
		if err := s.Run(ctx, root, RunOptions{Out: &log}, "install", "thinroot-test-dep"); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		list, err := InstalledPackages(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(list), want) {
			t.Fatalf("installed, want %s:\n%s\n%s", want, list, log.String())
		}
	}
	install("thinroot-test-dep-1.0-1.")
	tmp := link + ".new"
	point := func(dir string) {
		t.Helper()
		os.Remove(tmp)
		if err := os.Symlink(dir, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	point(v.RepoDir)
	install("thinroot-test-dep-1.0-2.")
	// Offline (mock's online=False, dnf's -C) too: a local repository
	// needs no network.
	s.Online = false
	point(d.RepoDir)
	install("thinroot-test-dep-1.0-1.")
}
