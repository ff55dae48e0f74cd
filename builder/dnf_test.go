package builder_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/mockcfg"
)

// A dnf-based config like the ones mock ships, with a fake package
// manager that records how it was called.
const fedoraLike = `
config_opts['root'] = 'fedora-41-x86_64'
config_opts['target_arch'] = 'x86_64'
config_opts['releasever'] = '41'
config_opts['package_manager'] = '%PM%'
config_opts['chroot_setup_cmd'] = 'install @buildsys-build'
config_opts['%PM%_command'] = '%FAKE%'
config_opts['dnf.conf'] = """
[main]
keepcache=1
[fedora]
name=Fedora {{ releasever }}
baseurl=http://mirror.invalid/fedora/{{ releasever }}/{{ target_arch }}/
"""
`

func loadFedoraLike(t *testing.T, pm, fake string) (*mockcfg.Config, mockcfg.Settings) {
	t.Helper()
	dir := t.TempDir()
	text := strings.NewReplacer("%PM%", pm, "%FAKE%", fake).Replace(fedoraLike)
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

// The derived bootstrap writes the rendered dnf.conf, copies it into the
// root, and runs the package manager with --installroot, --releasever,
// mock's common options and chroot_setup_cmd, in mock's order.
func TestDnfBootstrapArgvAndFiles(t *testing.T) {
	for _, c := range []struct {
		pm   string
		want string // the recorded argv
	}{
		{"dnf5", "--installroot ROOT --releasever 41 install @buildsys-build --setopt=deltarpm=False --setopt=allow_vendor_change=yes --allowerasing"},
		{"dnf4", "--installroot ROOT --releasever 41 --setopt=deltarpm=False --setopt=allow_vendor_change=yes --allowerasing --disableplugin=local --disableplugin=spacewalk --disableplugin=versionlock install @buildsys-build"},
	} {
		t.Run(c.pm, func(t *testing.T) {
			fake := filepath.Join(t.TempDir(), "fake-dnf")
			record := filepath.Join(t.TempDir(), "argv")
			os.WriteFile(fake, []byte("#!/bin/sh\nset -e\ntest -s \"$ROOT/etc/dnf/dnf.conf\"\ntest -s \"$ROOT/etc/yum/yum.conf\"\necho \"$@\" | sed \"s|$ROOT|ROOT|g\" > "+record+"\n"), 0o755)
			cfg, st := loadFedoraLike(t, c.pm, fake)
			state := t.TempDir()
			argv, err := builder.DnfBootstrap(cfg, st, state)
			if err != nil {
				t.Fatal(err)
			}
			conf, err := os.ReadFile(filepath.Join(state, "fedora-41-x86_64", "dnf.conf"))
			if err != nil || !strings.Contains(string(conf), "baseurl=http://mirror.invalid/fedora/41/x86_64/") {
				t.Fatalf("dnf.conf not rendered: %q %v", conf, err)
			}
			root := t.TempDir()
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "ROOT="+root)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bootstrap: %v\n%s", err, out)
			}
			got, _ := os.ReadFile(record)
			if strings.TrimSpace(string(got)) != c.want {
				t.Fatalf("package manager called with\n  %s\nwant\n  %s", strings.TrimSpace(string(got)), c.want)
			}
			if inRoot, _ := os.ReadFile(filepath.Join(root, "etc", "dnf", "dnf.conf")); string(inRoot) != string(conf) {
				t.Fatal("the root's dnf.conf differs from the rendered one")
			}
		})
	}
}

func TestNoBootstrapDerivable(t *testing.T) {
	cfg, st := loadFedoraLike(t, "dnf5", "/bin/true")
	st.ChrootSetupCmd = nil
	if _, err := builder.DnfBootstrap(cfg, st, t.TempDir()); err != builder.ErrNoBootstrap {
		t.Fatalf("no chroot_setup_cmd: %v", err)
	}
	st.PackageManager, st.ChrootSetupCmd = "microdnf", []string{"install", "x"}
	if _, err := builder.DnfBootstrap(cfg, st, t.TempDir()); err != builder.ErrNoBootstrap {
		t.Fatalf("microdnf: %v", err)
	}
}
