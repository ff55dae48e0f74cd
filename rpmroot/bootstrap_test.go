package rpmroot

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/rpmdist"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/pkgmgr"
)

func testdistConfig(t *testing.T) *Config {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs a root with the host's dnf, makes users in it (CI runs as root)")
	}
	d, err := rpmdist.Ensure(testguard.Context(t), nil)
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
	c, err := FromMock(cfg, st, filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The bootstrap of the test distribution in a plain directory, run as the
// Manager runs it (the hidden subcommand with ROOT set): a root whose
// rpmdb the host's rpm lists, the build user as mock makes it, its
// macros, mock's marks, and the logs beside the root.
func TestBootstrap(t *testing.T) {
	c := testdistConfig(t)
	c.Files = map[string]string{"etc/thinroot-test": "from config_opts['files']\n"}
	ctx := testguard.Context(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	argv, err := BootstrapArgv(c, t.TempDir(), []string{base})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "ROOT="+root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out.String())
	}
	list, err := pkgmgr.InstalledPackages(ctx, root)
	if err != nil || !strings.Contains(string(list), "testdist-release-") {
		t.Fatalf("rpm --root -qa: %v\n%s", err, list)
	}
	read := func(p string) string { b, _ := os.ReadFile(filepath.Join(root, p)); return string(b) }
	if !strings.Contains(read("etc/passwd"), "mockbuild:x:1000:135::/builddir:") || !strings.Contains(read("etc/group"), "mock:x:135:") {
		t.Errorf("build user:\n%s\n%s", read("etc/passwd"), read("etc/group"))
	}
	if !strings.Contains(read("builddir/.rpmmacros"), "%_topdir /builddir/build\n") {
		t.Errorf(".rpmmacros: %q", read("builddir/.rpmmacros"))
	}
	if fi, err := os.Stat(filepath.Join(root, "builddir/build/SRPMS")); err != nil || !fi.IsDir() {
		t.Errorf("build dirs: %v", err)
	}
	for _, f := range []string{".initialized", "etc/machine-id", "etc/dnf/dnf.conf", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if read("etc/thinroot-test") != "from config_opts['files']\n" {
		t.Errorf("config_opts['files'] not written")
	}
	res := filepath.Join(base, "result")
	rl, _ := os.ReadFile(filepath.Join(res, "root.log"))
	if !strings.Contains(string(rl), "DEBUG thinroot:  Complete!") || !strings.Contains(string(rl), "Executing command: ['/usr/bin/dnf-3'") {
		t.Errorf("root.log lacks the package manager's output:\n%s", rl)
	}
	sl, _ := os.ReadFile(filepath.Join(res, "state.log"))
	if !strings.Contains(string(sl), "Start: installing minimal buildroot with dnf4") || !strings.Contains(string(sl), "Finish: chroot init") {
		t.Errorf("state.log:\n%s", sl)
	}
	if hw, _ := os.ReadFile(filepath.Join(res, "hw_info.log")); !strings.HasPrefix(string(hw), "CPU info:\n") {
		t.Errorf("hw_info.log: %q", hw)
	}
	if ms := testguard.Mounted(root); len(ms) != 0 {
		t.Errorf("left mounted: %v", ms)
	}
}

// A package nobody has fails the bootstrap with exit status 30 and a last
// line that names it, which the Catcher turns into the error.
func TestBootstrapFailureNamesPackage(t *testing.T) {
	c := testdistConfig(t)
	c.PM.SetupCmd = []string{"install", "@buildsys-build", "thinroot-no-such-package"}
	ctx := testguard.Context(t)
	root := filepath.Join(t.TempDir(), "root")
	os.Mkdir(root, 0o755)
	argv, err := BootstrapArgv(c, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "ROOT="+root)
	cat := &Catcher{}
	cmd.Stdout, cmd.Stderr = cat, cat
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 30 {
		t.Fatalf("bootstrap: %v, want exit status 30", err)
	}
	err = cat.Err(err)
	var be *BootstrapError
	if !errors.As(err, &be) || !be.PackageManager || !strings.Contains(err.Error(), "thinroot-no-such-package") {
		t.Fatalf("the error does not name the package: %v", err)
	}
}
