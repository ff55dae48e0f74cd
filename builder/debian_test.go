package builder_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/mockcfg"
)

// debootstrapCache keeps the Debian buildroot's packages between test
// runs (testdata/bootstrap/debian.sh's DEBOOTSTRAP_CACHE).
const debootstrapCache = "/var/cache/thinroot-tests/debootstrap"

// mirrorReachable asks the host's apt mirror (as the bootstrap script
// finds it) for the suite's Release file.
func mirrorReachable(t *testing.T) (string, bool) {
	out, err := exec.Command("/bin/sh", "-c", `. /etc/os-release; echo $VERSION_CODENAME`).Output()
	suite := strings.TrimSpace(string(out))
	if err != nil || suite == "" {
		return "no Debian suite on this host", false
	}
	script := filepath.Join(lvmtest.RepoRoot(t), "testdata", "bootstrap", "debian.sh")
	mirror, err := exec.Command("/bin/sh", "-c", `SUITE=`+suite+`; eval "$(sed -n '/^host_mirror()/,/^}/p' `+script+`)"; host_mirror | head -n1`).Output()
	m := strings.TrimSpace(string(mirror))
	if err != nil || m == "" {
		return "no apt mirror configured on this host", false
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Head(strings.TrimRight(m, "/") + "/dists/" + suite + "/Release")
	if err != nil {
		return "mirror " + m + " unreachable: " + err.Error(), false
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "mirror " + m + " answered " + resp.Status, false
	}
	return m, true
}

// One real package build end to end: a debootstrapped buildroot on the
// file backend, dpkg-buildpackage of a tiny source package as the build
// user, the .deb in the result directory.
func TestDebianPackageBuild(t *testing.T) {
	lvmtest.RequireRoot(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Fatal("debootstrap is missing (scripts/deps.sh installs it)")
	}
	if why, ok := mirrorReachable(t); !ok {
		t.Skip("needs the Debian mirror: " + why)
	}
	// The packages debootstrap downloads are kept between runs on this
	// machine; a fresh machine downloads them once.
	t.Setenv("DEBOOTSTRAP_CACHE", debootstrapCache)
	env := env
	env.PoolSize = 6 << 30
	env.VolumeSize = 4 << 30
	f := lvmtest.NewFixture(t, env)
	repo := lvmtest.RepoRoot(t)
	// The bootstrap and build commands are the ones testdata/configs/
	// debian-bookworm.cfg gives, read as mock would read the file.
	cfg, err := (&mockcfg.Loader{ConfigDir: filepath.Join(repo, "testdata", "configs"), Home: t.TempDir()}).Load("debian-bookworm")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	f.Config.Bootstrap = st.Thinroot.Bootstrap
	f.Config.BootstrapDir = filepath.Dir(cfg.File())
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	w := &world{f: f, info: builder.ConfigInfo{Root: f.Root, Build: st.Thinroot.Build}}
	w.start(t, 1)
	pkg := filepath.Join(repo, "testdata", "debian-pkg", "hello-thinroot")
	start := time.Now()
	b := w.wait(t, w.submit(t, builder.Request{Source: pkg}).ID)
	total := time.Since(start)
	if b.State != builder.StateSucceeded {
		t.Fatalf("package build %s: %s\n%s", b.State, b.Error, readLog(t, w, b.ID))
	}
	debs, _ := filepath.Glob(filepath.Join(b.ResultDir, "hello-thinroot_1.0_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("no .deb in %s:\n%s", b.ResultDir, readLog(t, w, b.ID))
	}
	if out, err := exec.Command("dpkg-deb", "-c", debs[0]).Output(); err != nil || !strings.Contains(string(out), "usr/bin/hello-thinroot") {
		t.Fatalf("the .deb lacks the program: %v\n%s", err, out)
	}
	var bootstrap, build time.Duration
	for i, p := range b.Phases {
		if i+1 < len(b.Phases) {
			d := b.Phases[i+1].At.Sub(p.At)
			switch p.State {
			case builder.StateBootstrapping:
				bootstrap = d
			case builder.StateBuilding:
				build = d
			}
		}
	}
	t.Logf("Debian package build: bootstrap %v, build %v, total %v", bootstrap.Round(time.Second), build.Round(100*time.Millisecond), total.Round(time.Second))
	// A second build reuses postinit: no bootstrap.
	start = time.Now()
	b2 := w.wait(t, w.submit(t, builder.Request{Source: pkg}).ID)
	if b2.State != builder.StateSucceeded || b2.Bootstrapped {
		t.Fatalf("second build: %s bootstrapped=%v", b2.State, b2.Bootstrapped)
	}
	t.Logf("second package build (warm postinit): %v", time.Since(start).Round(100*time.Millisecond))
}
