package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/procs"
	"github.com/thinroot/thinroot/internal/rpmdist"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// mockEnv runs thinroot as mock: a copy of the binary named mock,
// set-uid root, run by an unprivileged member of the group that stands
// for mock's, as kojid and copr-rpmbuild run mock.
type mockEnv struct {
	*cliEnv
	d        *rpmdist.Dist
	mockBin  string
	uid, gid int // the farm's user and the mock group
	work     string
	creds    string // kojid's scm_credentials_dir, bound at /credentials
}

// The farm's user the tests run mock as, and the group standing for
// mock's (a group named mock on the host would change every other
// test's build user: mock's default chrootgid is its gid).
const (
	mockTestUser  = "thinroot-mockbuilder"
	mockTestGroup = "thinroot-mocktest"
)

func newMockEnv(t *testing.T) *mockEnv {
	t.Helper()
	// The binary under test takes its group from THINROOT_TEST_MOCK_GROUP
	// only in a test build (cmd_mock_testgroup.go).
	lvmtest.RequireCrashPoints(t)
	e := newCLI(t)
	d, err := rpmdist.Ensure(testguard.Context(t), lvmtest.TestWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	// The group mock and a user in it, as the farms' packages make them.
	if out, err := exec.Command("groupadd", "-f", "-r", mockTestGroup).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v\n%s", err, out)
	}
	if _, err := user.Lookup(mockTestUser); err != nil {
		out, err := exec.Command("useradd", "-M", "-N", "-g", mockTestGroup, "-d", "/nonexistent", "-s", "/bin/sh", mockTestUser).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 9) {
			t.Fatalf("useradd: %v\n%s", err, out)
		}
	}
	u, err := user.Lookup(mockTestUser)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(mockTestGroup)
	if err != nil {
		t.Fatal(err)
	}
	m := &mockEnv{cliEnv: e, d: d}
	m.uid, _ = strconv.Atoi(u.Uid)
	m.gid, _ = strconv.Atoi(g.Gid)
	// The binary under the name mock, set-uid root, where the user can
	// reach it.
	for p := e.dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	m.mockBin = filepath.Join(e.dir, "bin", "mock")
	os.MkdirAll(filepath.Dir(m.mockBin), 0o755)
	data, err := os.ReadFile(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.mockBin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(m.mockBin, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	m.work = filepath.Join(e.dir, "work")
	os.MkdirAll(m.work, 0o755)
	m.creds = filepath.Join(e.dir, "credentials")
	os.MkdirAll(m.creds, 0o755)
	os.WriteFile(filepath.Join(m.creds, "token"), []byte("secret\n"), 0o644)
	os.Chown(m.work, m.uid, m.gid)
	e.configs = filepath.Join(e.dir, "configs")
	os.MkdirAll(filepath.Join(e.configs, "koji"), 0o755)
	// The site's defaults say where thinroot keeps volumes, as a Koji
	// site puts its builder settings in site-defaults.cfg.
	site := "config_opts['thinroot'] = {'backend': 'file', 'pool_size': '8G'}\n" +
		"config_opts['plugin_conf']['lvm_root_opts']['size'] = '2G'\n"
	if err := os.WriteFile(filepath.Join(e.configs, "site-defaults.cfg"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// mockCmd is mock ARGS run as the farm's user in the group mock.
func (m *mockEnv) mockCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(m.mockBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + m.work, "THINROOT_STATE_DIR=" + m.state, "THINROOT_BASEDIR=" + m.mck,
		"THINROOT_CONFIG_DIR=" + m.configs, "THINROOT_TEST_MOCK_GROUP=" + mockTestGroup, "THINROOT_CACHE_DIR=" + filepath.Join(m.dir, "cache"), "THINROOT_LOG_LEVEL="}
	cmd.Dir = m.work
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(m.uid), Gid: uint32(m.gid), Groups: []uint32{uint32(m.gid)}}}
	return cmd
}

// run is mock's call with its exit status.
func (m *mockEnv) run(args ...string) (string, int) {
	m.t.Helper()
	cmd := m.mockCmd(args...)
	var out []byte
	var err error
	testguard.Call(m.t, "mock "+strings.Join(args, " "), func() error {
		out, err = cmd.CombinedOutput()
		return nil
	})
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		m.t.Fatalf("mock %v: %v", args, err)
	}
	return string(out), 0
}

func (m *mockEnv) must(args ...string) string {
	m.t.Helper()
	out, code := m.run(args...)
	if code != 0 {
		m.t.Fatalf("mock %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// kojiConfig writes /etc/mock/koji/NAME.cfg as kojid writes it
// (koji.genMockConfig: a header, then literal assignments only).
func (m *mockEnv) kojiConfig(name, group string) {
	m.t.Helper()
	repo := strings.Replace(strings.TrimSpace(rpmdist.DNFConf(m.d.URL)), "[main]\n",
		"[main]\ncachedir=/var/cache/yum\ndebuglevel=1\nlogfile=/var/log/yum.log\nretries=20\nobsoletes=1\nkeepcache=1\nstrict=1\n", 1)
	cfg := fmt.Sprintf(`# Auto-generated by the Koji build system

# Koji buildroot id: 123456
# Koji buildroot name: %[1]s
# Koji repo id: 7890
# Koji tag: td1-build

config_opts['basedir'] = %[2]q
config_opts['chroot_setup_cmd'] = 'install @%[3]s'
config_opts['chroothome'] = '/builddir'
config_opts['dnf_warning'] = False
config_opts['root'] = %[1]q
config_opts['rpmbuild_networking'] = False
config_opts['rpmbuild_timeout'] = 86400
config_opts['target_arch'] = 'x86_64'
config_opts['use_bootstrap_image'] = False
config_opts['use_host_resolv'] = False
config_opts['releasever'] = '1'
config_opts['package_manager'] = 'dnf'
config_opts['use_bootstrap'] = False
config_opts['yum.conf'] = %[4]q

config_opts['plugin_conf']['ccache_enable'] = False
config_opts['plugin_conf']['root_cache_enable'] = False
config_opts['plugin_conf']['yum_cache_enable'] = False
config_opts['plugin_conf']['bind_mount_opts']['dirs'].append((%[5]q, '/credentials'))

config_opts['macros']['%%_host'] = 'x86_64-koji-linux-gnu'
config_opts['macros']['%%_host_cpu'] = 'x86_64'
config_opts['macros']['%%_rpmfilename'] = '%%%%{NAME}-%%%%{VERSION}-%%%%{RELEASE}.%%%%{ARCH}.rpm'
config_opts['macros']['%%_topdir'] = '/builddir/build'
config_opts['macros']['%%dist'] = '.td1'
config_opts['macros']['%%distribution'] = 'Koji Testing'
config_opts['macros']['%%packager'] = 'Koji'
config_opts['macros']['%%vendor'] = 'Koji Vendor'
`, name, m.mck, group, repo+"\n", m.creds)
	if err := os.WriteFile(filepath.Join(m.configs, "koji", name+".cfg"), []byte(cfg), 0o644); err != nil {
		m.t.Fatal(err)
	}
	m.cleanups = append(m.cleanups, []string{"scrub", name})
}

// rpmQuery reads tags of a package file with the host's rpm.
func rpmQuery(t *testing.T, file, format string) string {
	t.Helper()
	out, err := exec.Command("rpm", "-qp", "--nosignature", "--qf", format, file).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp %s: %v\n%s", file, err, out)
	}
	return string(out)
}

// rpmdbList is the root's installed packages as kojid reads them: the
// host's rpm on the root's database.
func rpmdbList(t *testing.T, root string) string {
	t.Helper()
	db := filepath.Join(root, "usr/lib/sysimage/rpm")
	if _, err := os.Stat(db); err != nil {
		db = filepath.Join(root, "var/lib/rpm")
	}
	out, err := exec.Command("rpm", "--dbpath", db, "-qa", "--qf", "%{NAME}\n").CombinedOutput()
	if err != nil {
		t.Fatalf("rpm --dbpath %s -qa: %v\n%s", db, err, out)
	}
	return string(out)
}

func globN(t *testing.T, pattern string) []string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	return m
}

// buildArch is kojid's buildArch task against buildroot name: A, B, G,
// with the task's files between the calls and kojid's checks after.
func (m *mockEnv) buildArch(name, srpm string) (time.Duration, string) {
	t := m.t
	t.Helper()
	m.kojiConfig(name, "buildsys-build")
	r := "koji/" + name
	start := time.Now()
	// A: --init, no --no-clean.
	initOut, code := m.run("-r", r, "--init")
	if code != 0 {
		t.Fatalf("A --init: exit %d\n%s", code, initOut)
	}
	root := filepath.Join(m.mck, name, "root")
	if list := rpmdbList(t, root); !strings.Contains(list, "rpm-build") && !strings.Contains(list, "rpm\n") {
		t.Fatalf("the rpmdb after --init lists no rpm:\n%s", list)
	}
	// B: one word through the shell; kojid ignores the status.
	if out, code := m.run("-r", r, "--chroot", "uname -r"); code != 0 || strings.TrimSpace(lastLine(out)) == "" {
		t.Fatalf("B --chroot 'uname -r': exit %d\n%s", code, out)
	}
	// kojid writes into chroot_tmpdir between calls, as root.
	tmp := filepath.Join(root, "chroot_tmpdir")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "kept"), []byte("kept\n"), 0o644)
	// G: the SRPM lies in the task's work directory, outside the root.
	if out, code := m.run("-r", r, "--no-clean", "--target", "noarch", "--rebuild", srpm); code != 0 {
		t.Fatalf("G --rebuild: exit %d\n%s", code, out)
	}
	took := time.Since(start)
	// kojid's checks.
	result := filepath.Join(m.mck, name, "result")
	srpms := globN(t, filepath.Join(result, "*.src.rpm"))
	if len(srpms) != 1 {
		t.Fatalf("result has %d SRPMs, want exactly one: %v", len(srpms), srpms)
	}
	if got := rpmQuery(t, srpms[0], "%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}|%{NAME}-%{VERSION}-%{RELEASE}.src.rpm"); got != "Koji|Koji Vendor|Koji Testing|"+filepath.Base(srpms[0]) {
		t.Errorf("the SRPM's packager|vendor|distribution|file name: %q", got)
	}
	if rpms := globN(t, filepath.Join(result, "*.noarch.rpm")); len(rpms) == 0 {
		t.Errorf("no binary RPM in %s", result)
	}
	for _, l := range []string{"build.log", "root.log", "state.log", "hw_info.log", "installed_pkgs.log"} {
		fi, err := os.Stat(filepath.Join(result, l))
		if err != nil {
			t.Errorf("log: %v", err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != m.uid || int(st.Gid) != m.gid {
			t.Errorf("%s belongs to %d:%d, want the caller's %d:%d", l, st.Uid, st.Gid, m.uid, m.gid)
		}
	}
	state, _ := os.ReadFile(filepath.Join(result, "state.log"))
	if !strings.Contains(string(state), "Start: chroot init") || !strings.Contains(string(state), "Start: rpmbuild") {
		t.Errorf("state.log does not hold both calls' states:\n%s", state)
	}
	if b, err := os.ReadFile(filepath.Join(tmp, "kept")); err != nil || string(b) != "kept\n" {
		t.Errorf("chroot_tmpdir lost what kojid wrote between the calls: %v", err)
	}
	if list := rpmdbList(t, root); !strings.Contains(list, "thinroot-test-dep") {
		t.Errorf("the rpmdb after the build lacks the BuildRequires:\n%s", list)
	}
	noMountsUnder(t, root)
	return took, initOut
}

// A replay of kojid's buildArch task (A, B, G) as an unprivileged member
// of the group mock, for a cold config (bootstrapped by --init) and a
// warm one (the same config again, its postinit snapshot made).
func TestMockKojiBuildArch(t *testing.T) {
	m := newMockEnv(t)
	srpm := filepath.Join(m.work, "local", "work", filepath.Base(m.d.SRPM(rpmdist.SRPMTiny)))
	os.MkdirAll(filepath.Dir(srpm), 0o755)
	data, _ := os.ReadFile(m.d.SRPM(rpmdist.SRPMTiny))
	os.WriteFile(srpm, data, 0o644)
	// Each task has a buildroot (and a config) of its own; those of one
	// tag and repository are one family, bootstrapped once.
	const name = "td1-build-123456-7890"
	cold, out := m.buildArch(name, srpm)
	t.Logf("TIME kojid buildArch (A, B, G) on thinroot, cold config: %v", cold.Round(10*time.Millisecond))
	if !strings.Contains(out, "bootstrap of") {
		t.Errorf("the first task did not bootstrap:\n%s", out)
	}
	warm, out := m.buildArch("td1-build-123460-7890", srpm)
	t.Logf("TIME kojid buildArch (A, B, G) on thinroot, warm config (a new task of the same tag and repository): %v", warm.Round(10*time.Millisecond))
	if strings.Contains(out, "bootstrap of") {
		t.Errorf("the second task's buildroot bootstrapped again:\n%s", out)
	}
	// kojid's clean-up of the first buildroot: a lazy unmount of what is
	// mounted under it, then rm -rf. The next call of the family removes
	// the volume.
	first := filepath.Join(m.mck, name)
	if err := exec.Command("umount", "-l", filepath.Join(first, "root")).Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(first); err != nil {
		t.Fatal(err)
	}
	out = m.must("-r", "koji/td1-build-123460-7890", "--chroot", "true")
	if !strings.Contains(out, "its root "+filepath.Join(first, "root")+" is gone") {
		t.Errorf("the first buildroot's volume was not removed after kojid removed it:\n%s", out)
	}
	// Warm again, in the same buildroot name: --init clones afresh.
	again, _ := m.buildArch("td1-build-123460-7890", srpm)
	t.Logf("TIME kojid buildArch again in the same buildroot name: %v", again.Round(10*time.Millisecond))
}

// A replay of kojid's buildSRPMFromSCM task (A, B, C, D) as an
// unprivileged member of the group mock: the checkout lies in the
// root's chroot_tmpdir, owned by the farm's user; the source command
// runs there with --unpriv --cwd; the SRPM is built from the spec and
// sources inside the root.
func TestMockKojiSRPMFromSCM(t *testing.T) {
	m := newMockEnv(t)
	const name = "td1-build-123457-7890"
	m.kojiConfig(name, "buildsys-build")
	r := "koji/" + name
	if out, code := m.run("-r", r, "--init"); code != 0 {
		t.Fatalf("A --init: exit %d\n%s", code, out)
	}
	if out, code := m.run("-r", r, "--chroot", "uname -r"); code != 0 {
		t.Fatalf("B: exit %d\n%s", code, out)
	}
	root := filepath.Join(m.mck, name, "root")
	// kojid checks out into chroot_tmpdir/scmroot and chowns it to its
	// user and the group mock.
	co := filepath.Join(root, "chroot_tmpdir", "scmroot", "thinroot-test-tiny")
	if err := os.MkdirAll(co, 0o755); err != nil {
		t.Fatal(err)
	}
	recipe := filepath.Join(lvmtest.RepoRoot(t), "testdata", "rpmdist", "srpms")
	for src, dst := range map[string]string{"thinroot-test-tiny.spec": "thinroot-test-tiny.spec", "thinroot-test-tiny.sh": "thinroot-test-tiny.sh.in"} {
		data, err := os.ReadFile(filepath.Join(recipe, src))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(co, dst), data, 0o644)
	}
	for _, p := range []string{filepath.Join(root, "chroot_tmpdir"), filepath.Dir(co), co,
		filepath.Join(co, "thinroot-test-tiny.spec"), filepath.Join(co, "thinroot-test-tiny.sh.in")} {
		os.Chown(p, m.uid, m.gid)
	}
	// The config's bind mounts (kojid appends its credentials directory).
	if out, code := m.run("-r", r, "--no-clean", "--chroot", "cat /credentials/token"); code != 0 || !strings.Contains(out, "secret") {
		t.Fatalf("the config's bind mount: exit %d\n%s", code, out)
	}
	// C: the SCM's source command, several words, no "--".
	chrootCo := "/chroot_tmpdir/scmroot/thinroot-test-tiny"
	if out, code := m.run("-r", r, "--no-clean", "--unpriv", "--cwd", chrootCo, "--chroot", "cp", "thinroot-test-tiny.sh.in", "thinroot-test-tiny.sh"); code != 0 {
		t.Fatalf("C source command: exit %d\n%s", code, out)
	}
	fi, err := os.Stat(filepath.Join(co, "thinroot-test-tiny.sh"))
	if err != nil {
		t.Fatalf("the source command did not run in --cwd: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != m.uid || int(st.Gid) != m.gid {
		t.Errorf("--unpriv wrote as %d:%d, want the caller's %d:%d", st.Uid, st.Gid, m.uid, m.gid)
	}
	// D: the SRPM from the spec and sources, host paths inside the root.
	if out, code := m.run("-r", r, "--no-clean", "--buildsrpm", "--spec", filepath.Join(co, "thinroot-test-tiny.spec"),
		"--sources", co, "--target", "noarch"); code != 0 {
		t.Fatalf("D --buildsrpm: exit %d\n%s", code, out)
	}
	result := filepath.Join(m.mck, name, "result")
	srpms := globN(t, filepath.Join(result, "*.src.rpm"))
	if len(srpms) != 1 {
		t.Fatalf("result has %d SRPMs, want exactly one: %v", len(srpms), srpms)
	}
	if got := rpmQuery(t, srpms[0], "%{NAME}-%{VERSION}-%{RELEASE}.src.rpm|%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}"); got != filepath.Base(srpms[0])+"|Koji|Koji Vendor|Koji Testing" {
		t.Errorf("the SRPM's file name|packager|vendor|distribution: %q", got)
	}
	if rpms := globN(t, filepath.Join(result, "*.noarch.rpm")); len(rpms) != 0 {
		t.Errorf("--buildsrpm built binary RPMs: %v", rpms)
	}
	noMountsUnder(t, root)
}

// A replay of copr-rpmbuild's RPM build: one call with --spec --sources
// --resultdir --uniqueext -r child.cfg (a config in Copr's form that
// includes a shipped-style config), then its clean-up call.
func TestMockCoprBuild(t *testing.T) {
	m := newMockEnv(t)
	child, clone, results := m.coprSetup()
	ext := "1733112345.123456"
	start := time.Now()
	out, code := m.run("--spec", filepath.Join(clone, "thinroot-test-tiny.spec"), "--sources", clone,
		"--resultdir", results, "--uniqueext", ext, "-r", child, "--with", "tests", "--without", "docs")
	if code != 0 {
		t.Fatalf("copr's build: exit %d\n%s", code, out)
	}
	t.Logf("TIME copr-rpmbuild's mock call (--spec --sources, cold config): %v", time.Since(start).Round(10*time.Millisecond))
	srpms := globN(t, filepath.Join(results, "*.src.rpm"))
	rpms := globN(t, filepath.Join(results, "*.noarch.rpm"))
	if len(srpms) != 1 || len(rpms) != 1 {
		t.Fatalf("results: SRPMs %v, RPMs %v\n%s", srpms, rpms, out)
	}
	if got := rpmQuery(t, rpms[0], "%{VENDOR}|%{RELEASE}"); got != "Copr - user someone|1.td1" {
		t.Errorf("vendor|release of the RPM: %q", got)
	}
	for _, l := range []string{"build.log", "root.log", "state.log", "hw_info.log", "installed_pkgs.log", "configs/child.cfg"} {
		if _, err := os.Stat(filepath.Join(results, l)); err != nil {
			t.Errorf("result directory: %v", err)
		}
	}
	// The root went after the build (the result directory is outside it).
	wdir := filepath.Join(m.mck, "testdist-1-x86_64-1733112345_123456")
	if _, err := os.Stat(filepath.Join(wdir, "root")); err == nil {
		t.Errorf("the root %s stayed after a build whose results are outside it", wdir)
	}
	// copr's clean-up call.
	if out, code := m.run("-r", child, "--uniqueext", ext, "--scrub", "bootstrap", "--scrub", "chroot", "--scrub", "root-cache", "--quiet"); code != 0 || strings.TrimSpace(out) != "" {
		t.Fatalf("copr's clean-up: exit %d, output %q", code, out)
	}
	if _, err := os.Stat(wdir); err == nil {
		t.Errorf("%s stayed after --scrub chroot", wdir)
	}
	// A second build of the config clones the same postinit and builddep
	// snapshot: no bootstrap, no package manager.
	start = time.Now()
	out, code = m.run("--spec", filepath.Join(clone, "thinroot-test-tiny.spec"), "--sources", clone,
		"--resultdir", results, "--uniqueext", "1733112399.1", "-r", child)
	if code != 0 {
		t.Fatalf("second build: exit %d\n%s", code, out)
	}
	t.Logf("TIME copr-rpmbuild's mock call, warm config: %v", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(out, "hit") {
		t.Errorf("the second build did not clone a builddep snapshot:\n%s", out)
	}
}

// coprSetup writes a shipped-style config (a chroot config including a
// template) and copr-rpmbuild's child.cfg including it, in its result
// directory, and a clone with a spec and its source; it returns the
// child config, the clone and the result directory.
func (m *mockEnv) coprSetup() (child, clone, results string) {
	t := m.t
	t.Helper()
	// The shipped config, as mock-core-configs has them: a template
	// included by a chroot config.
	os.MkdirAll(filepath.Join(m.configs, "templates"), 0o755)
	tpl := `config_opts['chroot_setup_cmd'] = 'install @buildsys-build'
config_opts['dist'] = 'td{{ releasever }}'
config_opts['package_manager'] = 'dnf'
config_opts['use_bootstrap'] = False
config_opts['macros']['%dist'] = '.{{ dist }}'
config_opts['dnf.conf'] = """
` + strings.TrimSpace(rpmdist.DNFConf(m.d.URL)) + `
"""
`
	os.WriteFile(filepath.Join(m.configs, "templates", "testdist.tpl"), []byte(tpl), 0o644)
	os.WriteFile(filepath.Join(m.configs, "testdist-1-x86_64.cfg"), []byte(`config_opts['releasever'] = '1'
config_opts['target_arch'] = 'x86_64'
config_opts['legal_host_arches'] = ('x86_64',)
config_opts['root'] = 'testdist-1-x86_64'
include('templates/testdist.tpl')
`), 0o644)
	m.cleanups = append(m.cleanups, []string{"scrub", "testdist-1-x86_64"})
	// copr-rpmbuild's result directory: configs/child.cfg from mock.cfg.j2.
	results = filepath.Join(m.work, "results")
	os.MkdirAll(filepath.Join(results, "configs"), 0o755)
	child = filepath.Join(results, "configs", "child.cfg")
	os.WriteFile(child, []byte(`include('/etc/mock/testdist-1-x86_64.cfg')
config_opts.setdefault('plugin_conf', {})
config_opts['plugin_conf'].setdefault('tmpfs_opts', {})
config_opts['plugin_conf']['tmpfs_opts']['keep_mounted'] = True
config_opts['rpmbuild_networking'] = False
config_opts['use_host_resolv'] = False
config_opts['macros']['%copr_username'] = 'someone'
config_opts['macros']['%copr_projectname'] = 'tiny'
config_opts['macros']['%vendor'] = 'Copr - user someone'
config_opts['macros']['%buildtag'] = '.copr123'
config_opts['use_bootstrap'] = False
config_opts['use_bootstrap_image'] = False
config_opts["dnf.conf"] += """
[copr_base]
name='Copr repository'
baseurl=`+m.d.URL+`
gpgcheck=0
enabled=1
skip_if_unavailable=0
metadata_expire=0
cost=1
best=1
"""
`), 0o644)
	// The include names /etc/mock; point it at the test's config dir.
	data, _ := os.ReadFile(child)
	os.WriteFile(child, []byte(strings.Replace(string(data), "/etc/mock/", m.configs+"/", 1)), 0o644)
	// The clone: the spec and its source, as dist-git-client leaves them.
	clone = filepath.Join(m.work, "workdir-x", "thinroot-test-tiny")
	os.MkdirAll(clone, 0o755)
	recipe := filepath.Join(lvmtest.RepoRoot(t), "testdata", "rpmdist", "srpms")
	for _, f := range []string{"thinroot-test-tiny.spec", "thinroot-test-tiny.sh"} {
		data, _ := os.ReadFile(filepath.Join(recipe, f))
		os.WriteFile(filepath.Join(clone, f), data, 0o644)
	}
	for _, p := range []string{results, filepath.Join(results, "configs"), child, filepath.Dir(clone), clone} {
		os.Chown(p, m.uid, m.gid)
	}
	return child, clone, results
}

// Exit statuses as kojid and copr see them.
func TestMockExitCodes(t *testing.T) {
	m := newMockEnv(t)
	const name = "td1-build-123458-7890"
	m.kojiConfig(name, "buildsys-build")
	r := "koji/" + name
	m.must("-r", r, "--init")
	task := filepath.Join(m.work, "task")
	os.MkdirAll(task, 0o755)
	// A failing rpmbuild: rpmbuild's status, 1.
	fail := filepath.Join(task, filepath.Base(m.d.SRPM(rpmdist.SRPMFail)))
	data, _ := os.ReadFile(m.d.SRPM(rpmdist.SRPMFail))
	os.WriteFile(fail, data, 0o644)
	if out, code := m.run("-r", r, "--no-clean", "--rebuild", fail); code != 1 {
		t.Errorf("failing rpmbuild: exit %d, want 1\n%s", code, out)
	}
	build, _ := os.ReadFile(filepath.Join(m.mck, name, "result", "build.log"))
	if !strings.Contains(string(build), rpmdist.FailMarker) {
		t.Errorf("build.log lacks rpmbuild's failure")
	}
	// Unmet BuildRequires: the package manager's 30.
	spec := filepath.Join(task, "unmet.spec")
	os.WriteFile(spec, []byte(`Name: thinroot-test-unmet
Version: 1
Release: 1
Summary: needs what nobody provides
License: MIT
BuildArch: noarch
BuildRequires: thinroot-no-such-package
%description
x
%files
`), 0o644)
	if out, code := m.run("-r", r, "--no-clean", "--spec", spec); code != 30 || !strings.Contains(out, "thinroot-no-such-package") {
		t.Errorf("unmet BuildRequires: exit %d, want 30\n%s", code, out)
	}
	// --chroot passes the command's status on.
	if out, code := m.run("-r", r, "--chroot", "exit 42"); code != 42 {
		t.Errorf("--chroot 'exit 42': exit %d\n%s", code, out)
	}
	if out, code := m.run("-r", r, "--chroot", "--", "/bin/sh", "-c", "kill -TERM $$"); code != 143 {
		t.Errorf("--chroot killed by SIGTERM: exit %d, want 143\n%s", code, out)
	}
	// A bad config: 3.
	os.WriteFile(filepath.Join(m.configs, "broken.cfg"), []byte("config_opts['root'] = 'broken'\nconfig_opts['x'] = (\n"), 0o644)
	if out, code := m.run("-r", "broken", "--init"); code != 3 {
		t.Errorf("a config that does not load: exit %d, want 3\n%s", code, out)
	}
	if out, code := m.run("-r", "no-such-config", "--init"); code != 3 {
		t.Errorf("a missing config: exit %d, want 3\n%s", code, out)
	}
	// Bad command lines: the parser's 2, BadCmdline's 5, mode arguments' 50.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-r", r, "--scrub", "everything"}, 2},
		{[]string{"-r", r, "--resultdir"}, 2},
		{[]string{"-r", r, "--rebuild", fail, fail}, 5},
		{[]string{"-r", r, "--chroot"}, 50},
	} {
		if out, code := m.run(tc.args...); code != tc.code {
			t.Errorf("mock %q: exit %d, want %d\n%s", tc.args, code, tc.code, out)
		}
	}
	// Somebody outside the group mock is refused.
	cmd := m.mockCmd("-r", r, "--chroot", "true")
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(m.uid), Gid: 65534, Groups: []uint32{65534}}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not a member of the group "+mockTestGroup) {
		t.Errorf("a caller outside the group mock: %v\n%s", err, out)
	}
}

// SIGINT, SIGTERM and SIGHUP during a build (as kojid's cancel, copr's
// timeout and a pty's hang-up send them) stop it with mock's status and
// leave no process in the root and nothing mounted under it; the root
// itself stays for the farm's next call.
func TestMockSignals(t *testing.T) {
	m := newMockEnv(t)
	const name = "td1-build-123459-7890"
	m.kojiConfig(name, "buildsys-build")
	r := "koji/" + name
	m.must("-r", r, "--init")
	// A build that sleeps in %build, its sleep and a child of it in the
	// root when the signal comes.
	// The sleeps' command lines carry a mark: a number of seconds no
	// other process sleeps.
	mark := fmt.Sprintf("9%08d", time.Now().UnixNano()%100000000)
	spec := filepath.Join(m.work, "thinroot-test-sleep.spec")
	os.WriteFile(spec, []byte(`Name: thinroot-test-sleep
Version: 1
Release: 1
Summary: sleeps in %%build
License: MIT
BuildArch: noarch
%description
x
%build
sleep `+mark+`1 &
sleep `+mark+`2
%files
`), 0o644)
	root := filepath.Join(m.mck, name, "root")
	state := filepath.Join(m.mck, name, "result", "state.log")
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 7}, {syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		before, _ := os.ReadFile(state)
		cmd := m.mockCmd("-r", r, "--no-clean", "--spec", spec)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		ended := false
		limit := time.Now().Add(40 * time.Second)
		testguard.WaitFor(t, 120*time.Second, "rpmbuild to start", func() bool {
			if time.Now().After(limit) {
				now, rerr := os.ReadFile(state)
				ls, _ := exec.Command("ls", "-la", filepath.Dir(state)).CombinedOutput()
				t.Fatalf("rpmbuild did not start within 40s; marked processes: %v; state.log (%v):\n%s\n%s", procs.Marked(mark), rerr, now, ls)
			}
			select {
			case err = <-done:
				ended = true
				return true
			default:
			}
			now, _ := os.ReadFile(state)
			return len(now) > len(before) && strings.Contains(string(now[len(before):]), "Start: rpmbuild thinroot-test-sleep") &&
				len(procs.Marked(mark)) == 2
		})
		if ended {
			t.Fatalf("mock ended before rpmbuild started: %v\n%s", err, out.String())
		}
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(tc.sig)
		testguard.Call(t, "mock after "+tc.sig.String(), func() error { err = <-done; return nil })
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.sig, code, tc.code, out.String())
		}
		testguard.WaitFor(t, 10*time.Second, "no process of the build left", func() bool { return len(procs.Marked(mark)) == 0 })
		noMountsUnder(t, root)
		if ok, _ := mount.IsMountpoint(root); !ok {
			t.Errorf("after %v the root is no longer mounted at %s", tc.sig, root)
		}
	}
	// The root serves the next call.
	if out, code := m.run("-r", r, "--chroot", "test -d /builddir && echo again"); code != 0 || !strings.Contains(out, "again") {
		t.Fatalf("chroot after the signals: %d %s", code, out)
	}
}

// Ten roots of one config built at once, as copr's unique-exts give
// them (kojid runs up to ten tasks at once): one bootstrap, one install
// of the BuildRequires into a builddep snapshot, every build succeeds.
func TestMockTenRoots(t *testing.T) {
	m := newMockEnv(t)
	child, clone, results := m.coprSetup()
	const n = 10
	type res struct {
		out  string
		code int
	}
	done := make(chan res, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		rd := filepath.Join(results, fmt.Sprintf("r%d", i))
		os.MkdirAll(rd, 0o755)
		os.Chown(rd, m.uid, m.gid)
		go func() {
			out, code := m.run("--spec", filepath.Join(clone, "thinroot-test-tiny.spec"), "--sources", clone,
				"--resultdir", rd, "--uniqueext", fmt.Sprintf("ten%d", i), "-r", child)
			done <- res{out, code}
		}()
	}
	boots := 0
	for i := 0; i < n; i++ {
		var r res
		testguard.Call(t, "ten builds", func() error { r = <-done; return nil })
		if r.code != 0 {
			t.Errorf("a build failed: exit %d\n%s", r.code, r.out)
		}
		if strings.Contains(r.out, "[thinroot] bootstrapping testdist-1-x86_64") {
			boots++
		}
	}
	t.Logf("TIME ten roots of one config built at once: %v", time.Since(start).Round(10*time.Millisecond))
	if boots != 1 {
		t.Errorf("%d builds bootstrapped the config, want one", boots)
	}
	for i := 0; i < n; i++ {
		if rpms := globN(t, filepath.Join(results, fmt.Sprintf("r%d", i), "*.noarch.rpm")); len(rpms) != 1 {
			t.Errorf("root %d: RPMs %v", i, rpms)
		}
	}
	for i := 0; i < n; i++ {
		if _, err := os.Stat(filepath.Join(m.mck, fmt.Sprintf("testdist-1-x86_64-ten%d", i), "root")); err == nil {
			t.Errorf("root %d stayed after its build", i)
		}
	}
}

// The other modes, on a config named by path (no family): --init,
// --print-root-path, --install, --copyin, --copyout, --shell with its
// standard input, bind mounts from --plugin-option, and --scrub.
func TestMockModes(t *testing.T) {
	m := newMockEnv(t)
	child, _, _ := m.coprSetup()
	r := child
	m.must("-r", r, "--init", "--uniqueext", "modes")
	root := strings.TrimSpace(m.must("-r", r, "--uniqueext", "modes", "--print-root-path"))
	if want := filepath.Join(m.mck, "testdist-1-x86_64-modes", "root"); root != want {
		t.Fatalf("--print-root-path: %q, want %q", root, want)
	}
	if ok, _ := mount.IsMountpoint(root); !ok {
		t.Fatalf("the root %s is not mounted after --init", root)
	}
	if out, code := m.run("-r", r, "--uniqueext", "modes", "--install", "thinroot-test-dep"); code != 0 {
		t.Fatalf("--install: exit %d\n%s", code, out)
	}
	if out, code := m.run("-r", r, "--uniqueext", "modes", "--install", "thinroot-no-such-package"); code != 30 {
		t.Fatalf("--install of a missing package: exit %d, want 30\n%s", code, out)
	}
	in := filepath.Join(m.work, "payload")
	os.WriteFile(in, []byte("payload\n"), 0o644)
	m.must("-r", r, "--uniqueext", "modes", "--copyin", in, "/payload")
	if out := m.must("-r", r, "--uniqueext", "modes", "--chroot", "cat /payload; thinroot-test-dep"); !strings.Contains(out, "payload") || !strings.Contains(out, "1.0-1") {
		t.Fatalf("--copyin or --install did not reach the root:\n%s", out)
	}
	m.must("-r", r, "--uniqueext", "modes", "--unpriv", "--chroot", "echo made-inside > /builddir/out.txt")
	outDir := filepath.Join(m.work, "copied")
	os.MkdirAll(outDir, 0o755)
	os.Chown(outDir, m.uid, m.gid)
	m.must("-r", r, "--uniqueext", "modes", "--copyout", "/builddir/out.txt", outDir)
	fi, err := os.Stat(filepath.Join(outDir, "out.txt"))
	if err != nil {
		t.Fatalf("--copyout: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != m.uid {
		t.Errorf("--copyout wrote as uid %d, want the caller's %d", st.Uid, m.uid)
	}
	if _, err := os.Stat(filepath.Join(root, ".thinroot-copy")); err == nil {
		t.Errorf("--copyin/--copyout left their mount point in the root")
	}
	// --shell reads standard input; bind mounts come from the plugin option.
	bound := filepath.Join(m.work, "bound")
	os.MkdirAll(bound, 0o755)
	os.WriteFile(filepath.Join(bound, "host-file"), []byte("from-host\n"), 0o644)
	sh := m.mockCmd("-r", r, "--uniqueext", "modes", `--plugin-option=bind_mount:dirs=(("`+bound+`", "/mnt/bound"),)`, "--shell")
	sh.Stdin = strings.NewReader("cat /mnt/bound/host-file; echo cwd=$(pwd); exit 3\n")
	var out []byte
	testguard.Call(t, "mock --shell", func() error { out, err = sh.CombinedOutput(); return nil })
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "from-host") || !strings.Contains(string(out), "cwd=/builddir") {
		t.Fatalf("--shell: %v\n%s", err, out)
	}
	noMountsUnder(t, root)
	// A snapshot of this root made the config's current one: a new
	// root starts from it (mock's --snapshot and --rollback-to, as
	// thinroot's commands).
	if out, code := m.rpmRun("snapshot", r, "withdep", "--uniqueext", "modes"); code != 0 {
		t.Fatalf("thinroot snapshot: exit %d\n%s", code, out)
	}
	if out, code := m.rpmRun("rollback-to", r, "withdep"); code != 0 {
		t.Fatalf("thinroot rollback-to: exit %d\n%s", code, out)
	}
	m.must("-r", r, "--uniqueext", "other", "--init")
	if out := m.must("-r", r, "--uniqueext", "other", "--chroot", "thinroot-test-dep && cat /payload"); !strings.Contains(out, "1.0-1") || !strings.Contains(out, "payload") {
		t.Errorf("a new root did not start from the config's current snapshot:\n%s", out)
	}
	m.must("-r", r, "--uniqueext", "other", "--scrub", "chroot")
	// --scrub chroot removes the root and its directory.
	m.must("-r", r, "--uniqueext", "modes", "--scrub", "chroot")
	if _, err := os.Stat(filepath.Dir(root)); err == nil {
		t.Errorf("%s stayed after --scrub chroot", filepath.Dir(root))
	}
}

// A replay of kojid's rebuildSRPM task (A, B, E, F): the uploaded SRPM
// copied into chroot_tmpdir, unpacked and rebuilt by rpm and rpmbuild
// run with --chroot after "--"; kojid then takes the SRPM from the root.
func TestMockKojiRebuildSRPM(t *testing.T) {
	m := newMockEnv(t)
	const name = "td1-build-123461-7890"
	m.kojiConfig(name, "buildsys-build")
	r := "koji/" + name
	m.must("-r", r, "--init")
	m.run("-r", r, "--chroot", "uname -r")
	root := filepath.Join(m.mck, name, "root")
	srpmDir := filepath.Join(root, "chroot_tmpdir", "srpm")
	os.MkdirAll(srpmDir, 0o755)
	base := filepath.Base(m.d.SRPM(rpmdist.SRPMTiny))
	data, _ := os.ReadFile(m.d.SRPM(rpmdist.SRPMTiny))
	os.WriteFile(filepath.Join(srpmDir, base), data, 0o644)
	// E, then F; kojid checks only F's status.
	m.run("-r", r, "--no-clean", "--target", "noarch", "--chroot", "--", "rpm", "--define", "_topdir /chroot_tmpdir/srpm_unpacked",
		"-iv", "/chroot_tmpdir/srpm/"+base)
	if out, code := m.run("-r", r, "--no-clean", "--target", "noarch", "--chroot", "--", "rpmbuild", "--define", "_topdir /chroot_tmpdir/srpm_unpacked",
		"-bs", "--nodeps", "/chroot_tmpdir/srpm_unpacked/SPECS/thinroot-test-tiny.spec"); code != 0 {
		t.Fatalf("F rpmbuild -bs: exit %d\n%s", code, out)
	}
	if got := globN(t, filepath.Join(root, "chroot_tmpdir", "srpm_unpacked", "SRPMS", "*.src.rpm")); len(got) != 1 {
		t.Fatalf("kojid finds %d SRPMs in the root, want one: %v", len(got), got)
	}
}

// Ten kojid buildArch tasks at once (kojid's default maxjobs), each with
// a buildroot and a config of its own, of one tag and repository: one
// bootstrap for the family, every task's A, B and G succeed.
func TestMockTenKojiRoots(t *testing.T) {
	m := newMockEnv(t)
	srpm := filepath.Join(m.work, filepath.Base(m.d.SRPM(rpmdist.SRPMTiny)))
	data, _ := os.ReadFile(m.d.SRPM(rpmdist.SRPMTiny))
	os.WriteFile(srpm, data, 0o644)
	const n = 10
	type res struct {
		name, out string
		err       error
	}
	done := make(chan res, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("td1-build-%d-7890", 200000+i)
		m.kojiConfig(name, "buildsys-build")
		go func() {
			var all strings.Builder
			for _, args := range [][]string{{"--init"}, {"--chroot", "uname -r"}, {"--no-clean", "--target", "noarch", "--rebuild", srpm}} {
				out, code := m.run(append([]string{"-r", "koji/" + name}, args...)...)
				all.WriteString(out)
				if code != 0 {
					done <- res{name, all.String(), fmt.Errorf("%s: exit %d", strings.Join(args, " "), code)}
					return
				}
			}
			done <- res{name, all.String(), nil}
		}()
	}
	boots := 0
	for i := 0; i < n; i++ {
		var r res
		testguard.Call(t, "ten kojid tasks", func() error { r = <-done; return nil })
		if r.err != nil {
			t.Errorf("task %s: %v\n%s", r.name, r.err, r.out)
		}
		boots += strings.Count(r.out, "INFO: bootstrapped ")
		if got := globN(t, filepath.Join(m.mck, r.name, "result", "*.noarch.rpm")); len(got) != 1 {
			t.Errorf("task %s: RPMs %v", r.name, got)
		}
	}
	t.Logf("TIME ten kojid buildArch tasks (A, B, G) of one tag and repository at once: %v", time.Since(start).Round(10*time.Millisecond))
	if boots != 1 {
		t.Errorf("%d tasks bootstrapped, want one for the family", boots)
	}
}
