package rpmroot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Main()
	BootstrapMain()
	os.Exit(testguard.Main(m))
}

const cfgText = `
config_opts['root'] = 'td-x86_64'
config_opts['target_arch'] = 'x86_64'
config_opts['releasever'] = '1'
config_opts['package_manager'] = 'dnf'
config_opts['chroot_setup_cmd'] = 'install @buildsys-build'
config_opts['dnf.conf'] = "[main]\n[td]\nbaseurl=file:///nonexistent\n"
config_opts['macros']['%_smp_mflags'] = '-j3'
config_opts['macros']['packager'] = 'Someone <a@b>'
config_opts['files']['etc/motd'] = 'hello\n'
config_opts['rpmbuild_timeout'] = 90
config_opts['thinroot'] = {'builddep_snapshots': 4}
`

func loadConfig(t *testing.T, text string) *Config {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "td-x86_64.cfg"), []byte(text), 0o644)
	cfg, err := (&mockcfg.Loader{ConfigDir: dir, Home: t.TempDir()}).Load("td-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromMock(cfg, st, "/cache")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What a config gives an RPM buildroot: mock's defaults for the build
// user, the macros with their '%', the files, the timeout, thinroot's
// builddep policy.
func TestFromMock(t *testing.T) {
	c := loadConfig(t, cfgText)
	if c.User != "mockbuild" || c.Group != "mock" || c.Home != "/builddir" || c.UID != DefaultUID && c.UID == 0 {
		t.Errorf("build user: %s %s %s %d", c.User, c.Group, c.Home, c.UID)
	}
	if c.RpmbuildArch != "x86_64" || c.Timeout != 90*time.Second || c.Builddeps.Max != 4 || c.Builddeps.PoolPercent != DefaultBuilddepPoolPercent {
		t.Errorf("settings: %+v", c)
	}
	mf := c.MacrosFile([][2]string{{"%_with_tests", "--with-tests"}})
	for _, want := range []string{"%_topdir /builddir/build\n", "%_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm\n",
		"%_smp_mflags -j3\n", "%packager Someone <a@b>\n", "%_with_tests --with-tests\n"} {
		if !strings.Contains(mf, want) {
			t.Errorf("macros file lacks %q:\n%s", want, mf)
		}
	}
	if c.Files["etc/motd"] != "hello\n" {
		t.Errorf("files: %v", c.Files)
	}
	if !c.DynamicBuildRequires || c.DynamicMaxLoops != 10 || c.StaticLoops != 10 {
		t.Errorf("loops: %+v", c)
	}
}

func TestBuildMacros(t *testing.T) {
	got, err := BuildMacros([]string{"dist .x1", "%foo bar baz"}, []string{"tests"}, []string{"docs"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"%dist", ".x1"}, {"%foo", "bar baz"}, {"%_with_tests", "--with-tests"}, {"%_without_docs", "--without-docs"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	for _, bad := range [][]string{{""}, {"a\nb c"}} {
		if _, err := BuildMacros(bad, nil, nil); err == nil {
			t.Errorf("define %q accepted", bad)
		}
	}
	if _, err := BuildMacros(nil, []string{"a b"}, nil); err == nil {
		t.Error("--with 'a b' accepted")
	}
}

// The logs in mock's formats, each opened with its version line, copied
// to the stream.
func TestLogs(t *testing.T) {
	dir := t.TempDir()
	var stream bytes.Buffer
	l, err := OpenLogs(dir, os.Getuid(), os.Getgid(), "6.7", &stream)
	if err != nil {
		t.Fatal(err)
	}
	l.Start("chroot init")
	l.Info("rootdir = %s", "/r")
	fmt.Fprint(l.Root(), "Installing:\n bash\npartial")
	fmt.Fprint(l.Build(), "+ make\n")
	l.Finish("chroot init")
	l.Close()
	read := func(n string) string { b, _ := os.ReadFile(filepath.Join(dir, n)); return string(b) }
	st := strings.Split(strings.TrimSpace(read("state.log")), "\n")
	if len(st) != 3 || !strings.HasSuffix(st[1], " - Start: chroot init") || !strings.HasSuffix(st[2], " - Finish: chroot init") {
		t.Errorf("state.log:\n%s", read("state.log"))
	}
	if _, err := time.Parse("2006-01-02 15:04:05,000", strings.SplitN(st[1], " - ", 2)[0]); err != nil {
		t.Errorf("state.log time: %v", err)
	}
	if want := "INFO thinroot:  Mock Version: 6.7 (thinroot)\nINFO thinroot:  rootdir = /r\nDEBUG thinroot:  Installing:\nDEBUG thinroot:   bash\nDEBUG thinroot:  partial\n"; read("root.log") != want {
		t.Errorf("root.log:\n%q\nwant\n%q", read("root.log"), want)
	}
	if read("build.log") != "Mock Version: 6.7 (thinroot)\n+ make\n" {
		t.Errorf("build.log: %q", read("build.log"))
	}
	if !strings.Contains(stream.String(), "Start: chroot init\nINFO: rootdir = /r\nInstalling:\n") {
		t.Errorf("stream:\n%s", stream.String())
	}
	// Opening again appends, as mock's "a+".
	l, _ = OpenLogs(dir, os.Getuid(), os.Getgid(), "6.7", nil)
	l.Close()
	if strings.Count(read("build.log"), "Mock Version") != 2 {
		t.Errorf("build.log was not appended to: %q", read("build.log"))
	}
}

// The build user's home: the rpmbuild tree and macros, and mock's cleanup
// that keeps exclude_from_homedir_cleanup.
func TestPrepareHome(t *testing.T) {
	c := loadConfig(t, cfgText)
	home := filepath.Join(t.TempDir(), "builddir")
	for _, f := range []string{"build/SOURCES/keep.tar", "build/BUILD/x/gone", ".bashrc", "stale"} {
		os.MkdirAll(filepath.Dir(filepath.Join(home, f)), 0o755)
		os.WriteFile(filepath.Join(home, f), nil, 0o644)
	}
	if err := c.PrepareHome(home, os.Getuid(), os.Getgid(), [][2]string{{"%x", "1"}}, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"build/SOURCES/keep.tar", ".bashrc", "build/RPMS", "build/originals", ".rpmmacros"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"build/BUILD/x", "stale"} {
		if _, err := os.Stat(filepath.Join(home, f)); err == nil {
			t.Errorf("%s survived the cleanup", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".rpmmacros")); !strings.HasSuffix(string(b), "%x 1\n") {
		t.Errorf(".rpmmacros: %q", b)
	}
	// A home that is a symbolic link is refused.
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(home, link)
	if err := c.PrepareHome(link, os.Getuid(), os.Getgid(), nil, false); err == nil {
		t.Error("a symbolic link home was accepted")
	}
}

// Paths in a root never go through the root's symbolic links.
func TestInRefusesLinks(t *testing.T) {
	root := t.TempDir()
	os.Symlink("/etc", filepath.Join(root, "etc"))
	if _, err := in(root, "etc/passwd"); err == nil {
		t.Error("a path through the root's /etc link was accepted")
	}
	if p, err := in(root, "usr/bin/x"); err != nil || p != filepath.Join(root, "usr/bin/x") {
		t.Errorf("plain path: %q %v", p, err)
	}
}

// The argv the Manager runs, its spec on disk, and the Catcher that gives
// a failed bootstrap's reason to the error a user sees.
func TestBootstrapArgvAndCatcher(t *testing.T) {
	c := loadConfig(t, cfgText)
	state := t.TempDir()
	argv, err := BootstrapArgv(c, state, []string{"/var/lib/mock"})
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 3 || argv[1] != BootstrapMarker || argv[2] != filepath.Join(state, "bootstrap", "td-x86_64.json") {
		t.Fatalf("argv %q", argv)
	}
	var spec bootstrapSpec
	data, _ := os.ReadFile(argv[2])
	if err := json.Unmarshal(data, &spec); err != nil || spec.Config.PM.Command != "/usr/bin/dnf-3" || spec.DetachUnder[0] != "/var/lib/mock" {
		t.Fatalf("spec: %v %+v", err, spec)
	}
	var out bytes.Buffer
	cat := &Catcher{W: &out}
	fmt.Fprint(cat, "Installing...\n"+pmErrorPrefix+"dnf4 install failed (exit status 1): no package provides: nosuch\n")
	err = cat.Err(errors.New("init td-x86_64: bootstrap: exit status 30"))
	var be *BootstrapError
	if !errors.As(err, &be) || be.ExitCode() != 30 || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("caught: %v", err)
	}
	if !strings.Contains(out.String(), "Installing...") {
		t.Error("the catcher swallowed output")
	}
	if (&Catcher{}).Err(nil) != nil {
		t.Error("nil error grew a reason")
	}
}
