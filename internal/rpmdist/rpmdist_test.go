package rpmdist_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/rpmdist"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds RPMs of the host's files into /var/cache, installs roots with dnf, chroots (CI runs as root)")
	}
}

// testCtx ends a little before the test binary's deadline, so a stuck
// command fails the test with its output instead of a panic.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		margin := time.Until(dl) / 10
		if margin > 30*time.Second {
			margin = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
		t.Cleanup(cancel)
	}
	return ctx
}

// logWriter sends output to t.Log line by line.
type logWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// stage times one step and logs how long it took.
func stage(t *testing.T, name string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	d := time.Since(start)
	t.Logf("TIME %-40s %6.2fs", name, d.Seconds())
	return d
}

// run runs cmd and fails the test with its output if it fails.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(out))
	}
	return string(out)
}

func tail(b []byte) string {
	if len(b) > 8000 {
		return "...\n" + string(b[len(b)-8000:])
	}
	return string(b)
}

// The whole path an RPM build takes on the test distribution: Ensure (cold
// or cached), the variant, the host's dnf installing @buildsys-build into
// an empty root, the host's rpm reading that root's database, and rpmbuild
// inside the root as an unprivileged user for each test SRPM, with its
// BuildRequires installed by the host's dnf builddep.
func TestDistribution(t *testing.T) {
	requireRoot(t)
	ctx := testCtx(t)
	lw := &logWriter{t: t}

	var d *rpmdist.Dist
	stage(t, "Ensure (builds when not cached)", func() {
		var err error
		if d, err = rpmdist.Ensure(ctx, lw); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("distribution %s: %s", d.Key, d.RepoDir)
	stage(t, "Ensure again (cached)", func() {
		d2, err := rpmdist.Ensure(ctx, lw)
		if err != nil {
			t.Fatal(err)
		}
		if d2.Dir != d.Dir {
			t.Fatalf("second Ensure: %s, first %s", d2.Dir, d.Dir)
		}
	})
	for _, n := range []string{rpmdist.SRPMTiny, rpmdist.SRPMDynBR, rpmdist.SRPMFail, rpmdist.SRPMManyBR, rpmdist.SRPMCC} {
		if _, err := os.Stat(d.SRPM(n)); err != nil {
			t.Fatalf("SRPM %s: %v", n, err)
		}
	}
	if target, err := filepath.EvalSymlinks(rpmdist.StableRepo); err != nil || target != d.RepoDir {
		t.Errorf("%s -> %s (%v), want %s", rpmdist.StableRepo, target, err, d.RepoDir)
	}
	names, err := rpmdist.ReadRPMNames(d.RepoDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d RPMs in the repository", len(names))

	// The variant: another repository whose metadata differs only by the
	// new release of thinroot-test-dep.
	v, err := d.Variant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m1, err1 := d.RepomdXML()
	m2, err2 := v.RepomdXML()
	if err1 != nil || err2 != nil || bytes.Equal(m1, m2) || v.URL == d.URL {
		t.Fatalf("variant repomd.xml: %v %v, equal %v", err1, err2, bytes.Equal(m1, m2))
	}
	for _, c := range []struct {
		dist *rpmdist.Dist
		rpm  string
	}{{d, "thinroot-test-dep-1.0-1.noarch.rpm"}, {v, "thinroot-test-dep-1.0-2.noarch.rpm"}} {
		if _, err := os.Stat(filepath.Join(c.dist.RepoDir, c.rpm)); err != nil {
			t.Errorf("%s: %v", c.dist.RepoDir, err)
		}
	}

	// The host's dnf bootstraps an empty root as mock does.
	work := t.TempDir()
	h, err := d.NewHost(filepath.Join(work, "host"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(work, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	stage(t, "dnf install @buildsys-build", func() {
		run(t, h.DNF(ctx, root, "install", "@buildsys-build"))
	})
	t.Logf("root after @buildsys-build: %s", du(t, root))
	installed := lines(run(t, h.RPM(ctx, root, "-qa", "--qf", "%{NAME}\n")))
	t.Logf("rpm --root -qa: %d packages", len(installed))
	for _, want := range []string{"bash", "coreutils", "rpm", "filesystem", "testdist-release", "testdist-rpm-config", "libc6", "passwd"} {
		if !contains(installed, want) {
			t.Errorf("rpm --root -qa lacks %s: %v", want, installed)
		}
	}
	if contains(installed, "gcc") || contains(installed, "thinroot-test-dep") {
		t.Errorf("@buildsys-build installed gcc or thinroot-test-dep: %v", installed)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite")); err != nil {
		t.Errorf("the root's rpm database is not in /var/lib/rpm: %v", err)
	}
	// rpm inside the root reads the same database.
	inside := lines(run(t, rpmdist.Chroot(ctx, root, 0, 0, nil, "rpm", "-qa", "--qf", "%{NAME}\n")))
	if len(inside) != len(installed) {
		t.Errorf("rpm -qa inside the root: %d packages, rpm --root: %d", len(inside), len(installed))
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if target, err := os.Readlink(filepath.Join(root, l)); err != nil || target != "usr/"+l {
			t.Errorf("/%s -> %q (%v), want usr/%s", l, target, err, l)
		}
	}

	// The build user, as mock makes it.
	run(t, rpmdist.Chroot(ctx, root, 0, 0, nil, "/usr/sbin/groupadd", "-g", "135", "mock"))
	run(t, rpmdist.Chroot(ctx, root, 0, 0, nil, "/usr/sbin/useradd", "-o", "-m", "-u", "1000", "-g", "135", "-d", "/builddir", "-N", "mockbuild"))
	if err := os.MkdirAll(filepath.Join(root, "builddir/build"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{rpmdist.SRPMTiny, rpmdist.SRPMDynBR, rpmdist.SRPMFail, rpmdist.SRPMManyBR, rpmdist.SRPMCC} {
		b, err := os.ReadFile(d.SRPM(n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "builddir", filepath.Base(d.SRPM(n))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, exec.Command("chown", "-R", "1000:135", filepath.Join(root, "builddir")))
	rpmbuild := func(args ...string) *exec.Cmd {
		return rpmdist.Chroot(ctx, root, 1000, 135, []string{"HOME=/builddir"},
			append([]string{"rpmbuild", "--define", "_topdir /builddir/build"}, args...)...)
	}
	in := func(n string) string { return "/builddir/" + filepath.Base(d.SRPM(n)) }

	// Dynamic BuildRequires first, while thinroot-test-dep is missing:
	// rpmbuild -br says so with exit status 11 and a buildreqs.nosrc.rpm,
	// whose requirements the host's dnf builddep installs.
	stage(t, "dynbr: rpmbuild -rr (exit 11)", func() {
		out, err := rpmbuild("-rr", in(rpmdist.SRPMDynBR)).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 11 {
			t.Fatalf("rpmbuild -rr: %v, want exit status 11\n%s", err, tail(out))
		}
	})
	nosrc, _ := filepath.Glob(filepath.Join(root, "builddir/build/SRPMS/*.buildreqs.nosrc.rpm"))
	if len(nosrc) != 1 {
		t.Fatalf("buildreqs.nosrc.rpm: %v", nosrc)
	}
	stage(t, "dynbr: dnf builddep nosrc.rpm", func() { run(t, h.DNF(ctx, root, "builddep", nosrc[0])) })
	stage(t, "dynbr: rpmbuild -rb", func() { run(t, rpmbuild("-rb", in(rpmdist.SRPMDynBR))) })
	expectRPM(t, root, "noarch/thinroot-test-dynbr-1.0-1.td1.noarch.rpm")

	stage(t, "tiny: dnf builddep", func() { run(t, h.DNF(ctx, root, "builddep", d.SRPM(rpmdist.SRPMTiny))) })
	stage(t, "tiny: rpmbuild --rebuild", func() {
		out := run(t, rpmbuild("--rebuild", in(rpmdist.SRPMTiny)))
		if !strings.Contains(out, "built with thinroot-test-dep 1.0-1") {
			t.Errorf("the tiny build did not see thinroot-test-dep 1.0-1:\n%s", tail([]byte(out)))
		}
	})
	expectRPM(t, root, "noarch/thinroot-test-tiny-1.0-1.td1.noarch.rpm")

	stage(t, "fail: rpmbuild --rebuild (fails)", func() {
		out, err := rpmbuild("--rebuild", in(rpmdist.SRPMFail)).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), rpmdist.FailMarker) {
			t.Fatalf("the failing build: %v, want exit status 1 and %s\n%s", err, rpmdist.FailMarker, tail(out))
		}
	})

	stage(t, "manybr: dnf builddep", func() { run(t, h.DNF(ctx, root, "builddep", d.SRPM(rpmdist.SRPMManyBR))) })
	stage(t, "manybr: rpmbuild --rebuild", func() { run(t, rpmbuild("--rebuild", in(rpmdist.SRPMManyBR))) })

	stage(t, "cc: dnf builddep (gcc)", func() { run(t, h.DNF(ctx, root, "builddep", d.SRPM(rpmdist.SRPMCC))) })
	t.Logf("root with gcc: %s", du(t, root))
	// A short compile here; at its defaults it runs for tens of seconds.
	stage(t, "cc: rpmbuild --rebuild (cc_rounds 1)", func() {
		run(t, rpmbuild("--rebuild", "--define", "cc_rounds 1", "--define", "cc_funcs 40", in(rpmdist.SRPMCC)))
	})
	expectRPM(t, root, "x86_64/thinroot-test-cc-1.0-1.td1.x86_64.rpm")
	out := run(t, rpmdist.Chroot(ctx, root, 0, 0, nil, "rpm", "-qp", "--qf", "%{NAME} %{PAYLOADCOMPRESSOR}\n", "/builddir/build/RPMS/x86_64/thinroot-test-cc-1.0-1.td1.x86_64.rpm"))
	t.Logf("built: %s", strings.TrimSpace(out))

	// Nothing the chroots mounted is left behind.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), root) {
		t.Errorf("mounts left under %s:\n%s", root, mounts)
	}
}

// Two Ensures racing on an empty cache build the distribution once; a
// leftover of a killed build is swept, and so is the distribution of
// another key that has not been used for PruneAge.
func TestEnsureConcurrent(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("builds a distribution from scratch")
	}
	ctx := testCtx(t)
	cache := filepath.Join(t.TempDir(), "cache")
	// What a build killed before its rename leaves.
	d0, err := rpmdist.EnsureIn(ctx, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(cache, ".tmp-"+d0.Key+"-killed")
	if err := os.MkdirAll(filepath.Join(stale, "dist", "repo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(d0.Dir); err != nil {
		t.Fatal(err)
	}
	// Distributions of other keys: one unused for longer than PruneAge,
	// which the next build removes, and a recent one, which stays.
	old, recent := filepath.Join(cache, "00000000000000aa"), filepath.Join(cache, "00000000000000bb")
	for _, dir := range []string{old, recent} {
		if err := os.MkdirAll(filepath.Join(dir, "repo"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-rpmdist.PruneAge - time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	dists := make([]*rpmdist.Dist, 2)
	logs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	start := time.Now()
	for i := range dists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dists[i], errs[i] = rpmdist.EnsureIn(ctx, cache, &logs[i])
		}()
	}
	wg.Wait()
	t.Logf("TIME %-40s %6.2fs", "two racing cold Ensures", time.Since(start).Seconds())
	built := 0
	for i := range dists {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v\n%s", i, errs[i], logs[i].String())
		}
		if dists[i].Dir != d0.Dir {
			t.Errorf("Ensure %d: %s, want %s", i, dists[i].Dir, d0.Dir)
		}
		if strings.Contains(logs[i].String(), "rpmdist: building") {
			built++
		}
	}
	if built != 1 {
		t.Errorf("%d builds, want 1:\n%s\n---\n%s", built, logs[0].String(), logs[1].String())
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed build's %s is still there: %v", stale, err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the long unused %s is still there: %v", old, err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("the recently used %s: %v", recent, err)
	}
	left, _ := filepath.Glob(filepath.Join(cache, ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporaries left: %v", left)
	}
	// Only the real cache publishes stable names.
	if _, err := os.Lstat(filepath.Join(cache, "repo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a private cache got a stable repo link: %v", err)
	}
}

// A cancelled Ensure stops its build and leaves no half-built tree.
func TestEnsureCancel(t *testing.T) {
	requireRoot(t)
	cache := filepath.Join(t.TempDir(), "cache")
	ctx, cancel := context.WithTimeout(testCtx(t), 1500*time.Millisecond)
	defer cancel()
	_, err := rpmdist.EnsureIn(ctx, cache, nil)
	if err == nil {
		t.Skip("the build finished within 1.5s; nothing to cancel")
	}
	ents, _ := os.ReadDir(cache)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("cancelled Ensure left %s", e.Name())
		}
	}
	// Its processes are gone: nothing holds the key's lock.
	locks, _ := filepath.Glob(filepath.Join(cache, ".lock-*"))
	if len(locks) == 0 {
		t.Fatal("the cancelled Ensure took no key lock")
	}
	for _, l := range locks {
		held, err := lock.TryLock(l, true)
		if held == nil {
			t.Errorf("%s still locked (%v)", l, err)
		}
		held.Release()
	}
}

func expectRPM(t *testing.T, root, rel string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "builddir/build/RPMS", rel)); err != nil {
		t.Errorf("built RPM: %v", err)
	}
}

func du(t *testing.T, dir string) string {
	out, err := exec.Command("du", "-sh", "--apparent-size", dir).Output()
	if err != nil {
		return fmt.Sprint(err)
	}
	return strings.Fields(string(out))[0]
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
