package builder_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/rpmdist"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/pkgmgr"
	"github.com/thinroot/thinroot/rpmroot"
)

// rpmWorld is a builder whose config is the test distribution's, as
// testdata/configs/testdist-x86_64.cfg, bootstrapped by the real dnf
// (the hidden bootstrap subcommand, run by the Manager), with its own
// pool, state dir, basedir and package cache.
type rpmWorld struct {
	*world
	dist *rpmdist.Dist
	rc   *rpmroot.Config
	// repo is the repository directory the config names: a symbolic link
	// to the distribution's repository, which setRepo points elsewhere.
	repo string
}

func newRPMWorld(t *testing.T, jobs int) *rpmWorld {
	t.Helper()
	lvmtest.RequireRoot(t)
	ctx := testguard.Context(t)
	d, err := rpmdist.Ensure(ctx, lvmtest.TestWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	if err := os.Symlink(d.RepoDir, repo); err != nil {
		t.Fatal(err)
	}
	cfgDir := filepath.Join(dir, "configs")
	os.MkdirAll(cfgDir, 0o755)
	os.WriteFile(filepath.Join(cfgDir, "testdist-x86_64.cfg"), []byte(rpmdist.MockConfig("testdist-x86_64", "file://"+repo)), 0o644)
	cfg, err := (&mockcfg.Loader{ConfigDir: cfgDir, Home: t.TempDir()}).Load("testdist-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rpmroot.FromMock(cfg, st, filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	f := lvmtest.NewFixtureRoot(t, env, "testdist-x86_64")
	argv, err := rpmroot.BootstrapArgv(rc, f.StateDir, []string{f.Basedir, f.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	f.Config.Bootstrap = argv
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	w := &world{f: f, info: builder.ConfigInfo{Root: f.Root, RPM: rc, Network: st.Thinroot.Network}}
	w.start(t, jobs)
	return &rpmWorld{world: w, dist: d, rc: rc, repo: repo}
}

// setRepo points the config's repository at dir.
func (w *rpmWorld) setRepo(t *testing.T, dir string) {
	t.Helper()
	tmp := w.repo + ".new"
	os.Remove(tmp)
	if err := os.Symlink(dir, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, w.repo); err != nil {
		t.Fatal(err)
	}
}

func (w *rpmWorld) build(t *testing.T, req builder.Request) builder.Build {
	t.Helper()
	start := time.Now()
	b := w.wait(t, w.submit(t, req).ID)
	t.Logf("TIME build %s (%s): %v, state %s", b.ID, req.SRPM+req.Spec, time.Since(start).Round(10*time.Millisecond), b.State)
	return b
}

// rpmOK fails the test unless the build succeeded.
func (w *rpmWorld) rpmOK(t *testing.T, b builder.Build) {
	t.Helper()
	if b.State != builder.StateSucceeded {
		t.Fatalf("build %s: %s %s (exit %v)\n%s", b.ID, b.State, b.Error, b.ExitCode, readLog(t, w.world, b.ID))
	}
}

// mockLogs are the five logs of mock's result directory.
var mockLogs = []string{"build.log", "root.log", "state.log", "hw_info.log", "installed_pkgs.log"}

func resultFile(t *testing.T, b builder.Build, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.ResultDir, name))
	if err != nil {
		t.Fatalf("build %s: %v", b.ID, err)
	}
	return string(data)
}

// hostSRPM builds an SRPM of spec (with sources) on the host.
func hostSRPM(t *testing.T, spec string, sources map[string]string) string {
	t.Helper()
	top := t.TempDir()
	for _, d := range []string{"SPECS", "SOURCES", "SRPMS"} {
		os.MkdirAll(filepath.Join(top, d), 0o755)
	}
	p := filepath.Join(top, "SPECS", "test.spec")
	os.WriteFile(p, []byte(spec), 0o644)
	for n, c := range sources {
		os.WriteFile(filepath.Join(top, "SOURCES", n), []byte(c), 0o644)
	}
	cmd := exec.Command("rpmbuild", "-bs", "--define", "_topdir "+top, p)
	cmd.Env = append(os.Environ(), "HOME="+top)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild -bs: %v\n%s", err, out)
	}
	ms, _ := filepath.Glob(filepath.Join(top, "SRPMS", "*.src.rpm"))
	if len(ms) != 1 {
		t.Fatalf("SRPMS: %v", ms)
	}
	return ms[0]
}

// The init of the test distribution's config with the real dnf: the
// postinit root has an rpm database the host's rpm lists, the build user
// and its macros, and root.log holds dnf's output.
func TestRPMInit(t *testing.T) {
	w := newRPMWorld(t, 1)
	ctx := testguard.Context(t)
	start := time.Now()
	var out bytes.Buffer
	if did, err := w.f.M.Init(ctx, w.f.Root, &out); err != nil || !did {
		t.Fatalf("init: %v %v\n%s", did, err, out.String())
	}
	t.Logf("TIME bootstrap (dnf install @buildsys-build into a thin volume, postinit): %v", time.Since(start).Round(10*time.Millisecond))
	root := w.f.Workdir("", "look")
	list, err := pkgmgr.InstalledPackages(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(list), "\n")
	if n < 50 || !strings.Contains(string(list), "rpm-") || !strings.Contains(string(list), "testdist-release-") {
		t.Fatalf("postinit's rpm database lists %d packages:\n%s", n, list)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite")); err != nil {
		t.Errorf("no database at /var/lib/rpm: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/passwd")); !strings.Contains(string(b), "mockbuild:x:1000:135::/builddir:") {
		t.Errorf("no build user:\n%s", b)
	}
	cfg, _ := w.f.M.Config(w.f.Root)
	rl, err := os.ReadFile(filepath.Join(cfg.WorkdirDir(cfg.UniqueExt), "result", "root.log"))
	if err != nil || !strings.Contains(string(rl), "Complete!") || !strings.Contains(string(rl), "install @buildsys-build") && !strings.Contains(string(rl), "'install', '@buildsys-build'") {
		t.Fatalf("root.log of the init: %v\n%s", err, rl)
	}
	if !strings.Contains(out.String(), "Start: installing minimal buildroot with dnf4") {
		t.Errorf("the init's output lacks its states:\n%s", out.String())
	}
}

// An SRPM rebuild: the RPM and the rebuilt SRPM flat in the result
// directory under their headers' names, mock's five logs, the package
// manager's output in root.log. The second rebuild clones the builddep
// snapshot and runs no package manager (the records say so); a new
// release in the repository (the variant) makes the third miss, and the
// old snapshot goes.
func TestRPMRebuildAndBuilddepSnapshots(t *testing.T) {
	w := newRPMWorld(t, 2)
	srpm := w.dist.SRPM(rpmdist.SRPMTiny)
	first := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}})
	w.rpmOK(t, first)
	for _, l := range mockLogs {
		if fi, err := os.Stat(filepath.Join(first.ResultDir, l)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", l, err)
		}
	}
	ctx := testguard.Context(t)
	rpms, _ := filepath.Glob(filepath.Join(first.ResultDir, "*.rpm"))
	sort.Strings(rpms)
	var names []string
	for _, p := range rpms {
		h, err := pkgmgr.ReadHeader(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want := h.NVR() + "." + h.Arch + ".rpm"
		if h.Source {
			want = h.NVR() + ".src.rpm"
		}
		if filepath.Base(p) != want {
			t.Errorf("%s is not named by its header (%s)", filepath.Base(p), want)
		}
		if fi, err := os.Stat(p); err == nil {
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 135 {
				t.Errorf("%s belongs to %d:%d, want the submitter's uid and the mock group, 0:135", filepath.Base(p), st.Uid, st.Gid)
			}
		}
		names = append(names, filepath.Base(p))
	}
	if strings.Join(names, " ") != "thinroot-test-tiny-1.0-1.td1.noarch.rpm thinroot-test-tiny-1.0-1.td1.src.rpm" {
		t.Errorf("results: %v", names)
	}
	if bl := resultFile(t, first, "build.log"); !strings.Contains(bl, "built with thinroot-test-dep 1.0-1") || !strings.Contains(bl, "Child return code was: 0") {
		t.Errorf("build.log:\n%s", bl)
	}
	if rl := resultFile(t, first, "root.log"); !strings.Contains(rl, "thinroot-test-dep") || !strings.Contains(rl, "Complete!") {
		t.Errorf("root.log lacks the BuildRequires install:\n%s", rl)
	}
	for _, s := range []string{"Start: build phase for thinroot-test-tiny-1.0-1.src.rpm", "Start: rpmbuild thinroot-test-tiny-1.0-1.src.rpm",
		"Finish: build phase for", "Start: Outputting list of installed packages"} {
		if !strings.Contains(resultFile(t, first, "state.log"), s) {
			t.Errorf("state.log lacks %q", s)
		}
	}
	if il := resultFile(t, first, "installed_pkgs.log"); !strings.Contains(il, "thinroot-test-dep-1.0-1.noarch ") {
		t.Errorf("installed_pkgs.log lacks the BuildRequires:\n%s", il)
	}
	if first.RPM == nil || first.RPM.PackageManagerRuns != 1 || first.RPM.BuilddepHit || len(first.RPM.Rounds) != 1 || first.RPM.Rounds[0].Hit {
		t.Fatalf("first build's record: %+v", first.RPM)
	}
	snap := first.RPM.Rounds[0].Snapshot
	if _, cs := w.f.M.State().Config(w.f.Root); cs.Snapshot(snap) == nil {
		t.Fatalf("builddep snapshot %s is not a snapshot of the config", snap)
	}

	second := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}})
	w.rpmOK(t, second)
	if second.RPM.PackageManagerRuns != 0 || !second.RPM.BuilddepHit || !second.RPM.Rounds[0].Hit || second.RPM.Rounds[0].Snapshot != snap {
		t.Fatalf("second build did not clone %s: %+v", snap, second.RPM)
	}
	if rl := resultFile(t, second, "root.log"); !strings.Contains(rl, snap+": hit") || strings.Contains(rl, "Executing command: ['/usr/bin/dnf-3'") {
		t.Errorf("second build's root.log:\n%s", rl)
	}
	if bl := resultFile(t, second, "build.log"); !strings.Contains(bl, "built with thinroot-test-dep 1.0-1") {
		t.Errorf("second build.log:\n%s", bl)
	}

	// The repository gets a new release of thinroot-test-dep.
	v, err := w.dist.Variant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.setRepo(t, v.RepoDir)
	third := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}})
	w.rpmOK(t, third)
	if third.RPM.PackageManagerRuns != 1 || third.RPM.BuilddepHit || third.RPM.Rounds[0].Snapshot == snap {
		t.Fatalf("third build, after the repository changed: %+v", third.RPM)
	}
	if bl := resultFile(t, third, "build.log"); !strings.Contains(bl, "built with thinroot-test-dep 1.0-2") {
		t.Errorf("third build did not get the new release:\n%s", bl)
	}
	if _, cs := w.f.M.State().Config(w.f.Root); cs.Snapshot(snap) != nil {
		t.Errorf("the builddep snapshot %s of the old metadata is still there", snap)
	}
	if st, _ := w.f.M.Refresh(ctx); true {
		if _, cs := st.Config(w.f.Root); len(cs.Workdirs) != 0 {
			t.Errorf("workdirs left: %+v", cs.Workdirs)
		}
	}
}

const whoamiSpec = `Name: thinroot-whoami
Version: 2
Release: 3%{?dist}
Summary: reports who builds it
License: MIT
BuildArch: noarch
Source0: note.txt
%{!?greeting:%global greeting unset}
%bcond_with extra

%description
Reports the build's identity and network.

%prep
cp %{SOURCE0} .

%build
echo "THINROOT-UID $(id -u) GID $(id -g)"
echo "THINROOT-NET $(grep -c : /proc/net/dev)"
echo "THINROOT-GREETING %{greeting}"
%if %{with extra}
echo "THINROOT-WITH extra"
%endif
cat note.txt

%install
install -D -m 0644 note.txt %{buildroot}%{_datadir}/thinroot-whoami/note.txt

%files
%{_datadir}/thinroot-whoami
`

// A spec and its sources: the SRPM built first (mock's buildsrpm), then
// rebuilt; as the build user, without network, with -D and --with
// passed to rpmbuild.
func TestRPMSpecBuild(t *testing.T) {
	w := newRPMWorld(t, 1)
	dir := t.TempDir()
	spec := filepath.Join(dir, "thinroot-whoami.spec")
	os.WriteFile(spec, []byte(whoamiSpec), 0o644)
	src := filepath.Join(dir, "sources")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "note.txt"), []byte("a note from the sources\n"), 0o644)
	b := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{Spec: spec, Sources: src,
		Defines: []string{"greeting hello there"}, With: []string{"extra"}}})
	w.rpmOK(t, b)
	bl := resultFile(t, b, "build.log")
	for _, want := range []string{"THINROOT-UID 1000 GID 135", "THINROOT-NET 1\n", "THINROOT-GREETING hello there", "THINROOT-WITH extra", "a note from the sources"} {
		if !strings.Contains(bl, want) {
			t.Errorf("build.log lacks %q:\n%s", want, bl)
		}
	}
	for _, f := range []string{"thinroot-whoami-2-3.td1.noarch.rpm", "thinroot-whoami-2-3.td1.src.rpm"} {
		if fi, err := os.Stat(filepath.Join(b.ResultDir, f)); err != nil {
			t.Errorf("result %s: %v", f, err)
		} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 135 {
			t.Errorf("result %s belongs to %d:%d, want the submitter's uid and the mock group, 0:135", f, st.Uid, st.Gid)
		}
	}
	if sl := resultFile(t, b, "state.log"); !strings.Contains(sl, "Start: buildsrpm") || !strings.Contains(sl, "Start: rpmbuild -bs") {
		t.Errorf("state.log lacks mock's buildsrpm:\n%s", sl)
	}
	// No BuildRequires beyond the base: no package manager at all.
	if b.RPM.PackageManagerRuns != 0 {
		t.Errorf("record: %+v", b.RPM)
	}
}

// Dynamic BuildRequires: rpmbuild -br says what %generate_buildrequires
// wants, dnf installs it, and the build sees it; the next build of the
// same package clones both rounds' snapshots.
func TestRPMDynamicBuildRequires(t *testing.T) {
	w := newRPMWorld(t, 1)
	srpm := w.dist.SRPM(rpmdist.SRPMDynBR)
	b := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}})
	w.rpmOK(t, b)
	dyn := false
	for _, r := range b.RPM.Rounds {
		dyn = dyn || (r.Phase == "dynamic" && !r.Hit)
	}
	if !dyn || b.RPM.PackageManagerRuns != 1 {
		t.Fatalf("record: %+v", b.RPM)
	}
	if !strings.Contains(resultFile(t, b, "build.log"), "Dynamic buildrequires detected") {
		t.Error("build.log does not say it found dynamic BuildRequires")
	}
	if !strings.Contains(strings.Join(b.RPM.Results, " "), "thinroot-test-dynbr-1.0-1.td1.noarch.rpm") {
		t.Errorf("results: %v", b.RPM.Results)
	}
	again := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}})
	w.rpmOK(t, again)
	if again.RPM.PackageManagerRuns != 0 || !again.RPM.BuilddepHit {
		t.Fatalf("second dynbr build: %+v", again.RPM)
	}
}

// Failures end as mock ends them: rpmbuild's status with a complete
// build.log; 30 with the missing names for BuildRequires nobody
// provides; 11 for a timeout.
func TestRPMFailures(t *testing.T) {
	w := newRPMWorld(t, 2)
	fail := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: w.dist.SRPM(rpmdist.SRPMFail)}})
	if fail.State != builder.StateFailed || fail.ExitCode == nil || *fail.ExitCode != 1 {
		t.Fatalf("failing build: %s exit %v %s", fail.State, fail.ExitCode, fail.Error)
	}
	bl := resultFile(t, fail, "build.log")
	if !strings.Contains(bl, rpmdist.FailMarker) || !strings.Contains(bl, "Child return code was: 1") {
		t.Errorf("build.log of the failed build:\n%s", bl)
	}
	unmet := hostSRPM(t, strings.Replace(strings.Replace(whoamiSpec, "Name: thinroot-whoami", "Name: thinroot-unmet", 1),
		"Source0: note.txt", "Source0: note.txt\nBuildRequires: thinroot-no-such-package >= 3\nBuildRequires: thinroot-test-dep", 1),
		map[string]string{"note.txt": "x\n"})
	b := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: unmet}})
	if b.State != builder.StateFailed || b.ExitCode == nil || *b.ExitCode != 30 || !strings.Contains(b.Error, "thinroot-no-such-package >= 3") {
		t.Fatalf("unmet BuildRequires: %s exit %v %q", b.State, b.ExitCode, b.Error)
	}
	if rl := resultFile(t, b, "root.log"); !strings.Contains(rl, "thinroot-no-such-package") {
		t.Errorf("root.log:\n%s", rl)
	}
	slow := hostSRPM(t, strings.Replace(strings.Replace(whoamiSpec, "Name: thinroot-whoami", "Name: thinroot-slow", 1),
		"%build\n", "%build\nsleep 600\n", 1), map[string]string{"note.txt": "x\n"})
	b = w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: slow}, Timeout: builder.Duration(20 * time.Second)})
	if b.State != builder.StateTimedOut || b.ExitCode == nil || *b.ExitCode != 11 {
		t.Fatalf("timed-out build: %s exit %v %s", b.State, b.ExitCode, b.Error)
	}
}

// Eight rebuilds of one SRPM at once on a cold config: one bootstrap, one
// BuildRequires install (the others wait for its snapshot and clone it),
// eight result directories. The log gives the wall time against one
// rebuild alone on a cold config of its own, and one on a warm config.
func TestRPMEightParallelRebuilds(t *testing.T) {
	srpm := ""
	var alone time.Duration
	{
		w1 := newRPMWorld(t, 1)
		srpm = w1.dist.SRPM(rpmdist.SRPMTiny)
		start := time.Now()
		w1.rpmOK(t, w1.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}}))
		alone = time.Since(start)
	}
	w := newRPMWorld(t, 8)
	start := time.Now()
	var ids []string
	for range 8 {
		ids = append(ids, w.submit(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}}).ID)
	}
	var mu sync.Mutex
	var builds []builder.Build
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := w.wait(t, id)
			mu.Lock()
			builds = append(builds, b)
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	boots, runs, waited := 0, 0, 0
	dirs := map[string]bool{}
	for _, b := range builds {
		w.rpmOK(t, b)
		if b.Bootstrapped {
			boots++
		}
		runs += b.RPM.PackageManagerRuns
		for _, r := range b.RPM.Rounds {
			if r.Waited {
				waited++
			}
		}
		if _, err := os.Stat(filepath.Join(b.ResultDir, "thinroot-test-tiny-1.0-1.td1.noarch.rpm")); err != nil {
			t.Errorf("build %s: %v", b.ID, err)
		}
		dirs[b.ResultDir] = true
	}
	if boots != 1 || runs != 1 || len(dirs) != 8 {
		t.Fatalf("%d bootstraps, %d BuildRequires installs, %d result directories; want 1, 1, 8", boots, runs, len(dirs))
	}
	var bootstrap time.Duration
	for _, b := range builds {
		if b.Bootstrapped {
			for i, p := range b.Phases {
				if p.State == builder.StateBootstrapping && i+1 < len(b.Phases) {
					bootstrap = b.Phases[i+1].At.Sub(p.At)
				}
			}
		}
	}
	one := time.Now()
	w.rpmOK(t, w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: srpm}}))
	t.Logf("TIME 8 parallel rebuilds on a cold config: %v wall (bootstrap %v, %d waited for the install); one rebuild alone on a cold config: %v; one on the warm config: %v",
		wall.Round(10*time.Millisecond), bootstrap.Round(10*time.Millisecond), waited, alone.Round(10*time.Millisecond), time.Since(one).Round(10*time.Millisecond))
	ctx := context.Background()
	if st, _ := w.f.M.Refresh(ctx); true {
		if _, cs := st.Config(w.f.Root); len(cs.Workdirs) != 0 {
			t.Errorf("workdirs left: %+v", cs.Workdirs)
		}
	}
}

// The figures of RPM builds on this machine, from one run: the
// bootstrap; for one BuildRequires and for fourteen, the first
// rebuild (the package manager installs them, a builddep snapshot is
// taken), a warm rebuild with builddep snapshots off (the package manager
// runs again, as mock's every build), and the rebuild that clones the
// builddep snapshot.
func TestRPMTimings(t *testing.T) {
	w := newRPMWorld(t, 1)
	ctx := testguard.Context(t)
	start := time.Now()
	if _, err := w.f.M.Init(ctx, w.f.Root, lvmtest.TestWriter(t)); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIME bootstrap: %v", time.Since(start).Round(10*time.Millisecond))
	for _, c := range []struct {
		name    string
		defines []string
	}{
		{rpmdist.SRPMTiny, nil},
		{rpmdist.SRPMManyBR, nil},
	} {
		req := builder.Request{RPMRequest: builder.RPMRequest{SRPM: w.dist.SRPM(c.name), Defines: c.defines}}
		timed := func(what string) builder.Build {
			start := time.Now()
			b := w.wait(t, w.submit(t, req).ID)
			w.rpmOK(t, b)
			t.Logf("TIME %s, %s: %v (package manager runs %d, builddep hit %v)", c.name, what,
				time.Since(start).Round(10*time.Millisecond), b.RPM.PackageManagerRuns, b.RPM.BuilddepHit)
			return b
		}
		if b := timed("first rebuild"); b.RPM.PackageManagerRuns == 0 {
			t.Errorf("the first rebuild of %s ran no package manager", c.name)
		}
		max := w.rc.Builddeps.Max
		w.rc.Builddeps.Max = 0
		if b := timed("warm rebuild, builddep snapshots off"); b.RPM.PackageManagerRuns == 0 {
			t.Errorf("with builddep snapshots off, %s ran no package manager", c.name)
		}
		w.rc.Builddeps.Max = max
		if b := timed("builddep snapshot rebuild"); !b.RPM.BuilddepHit {
			t.Errorf("%s missed its builddep snapshot: %+v", c.name, b.RPM)
		}
	}
}

// A bootstrap whose package manager fails publishes nothing, and the
// build that ran it fails as mock's would: exit status 30, the package
// named in its record.
func TestRPMBootstrapFailure(t *testing.T) {
	w := newRPMWorld(t, 1)
	w.rc.PM.SetupCmd = []string{"install", "@buildsys-build", "thinroot-no-such-package"}
	argv, err := rpmroot.BootstrapArgv(w.rc, w.f.StateDir, []string{w.f.Basedir, w.f.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	w.f.Config.Bootstrap = argv
	if err := w.f.M.AddConfig(w.f.Config); err != nil {
		t.Fatal(err)
	}
	b := w.build(t, builder.Request{RPMRequest: builder.RPMRequest{SRPM: w.dist.SRPM(rpmdist.SRPMTiny)}})
	if b.State != builder.StateFailed || b.ExitCode == nil || *b.ExitCode != 30 || !strings.Contains(b.Error, "thinroot-no-such-package") {
		t.Fatalf("build on a config whose bootstrap fails: %s exit %v %q", b.State, b.ExitCode, b.Error)
	}
	st, _ := w.f.M.Refresh(context.Background())
	if _, cs := st.Config(w.f.Root); cs != nil && (cs.Snapshot("postinit") != nil || len(cs.Workdirs) != 0 || cs.State != "failed") {
		t.Fatalf("after the failed bootstrap: state %s, snapshots %+v, workdirs %+v", cs.State, cs.Snapshots, cs.Workdirs)
	}
}
