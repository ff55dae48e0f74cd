package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/rpmdist"
)

// Koji's configs of one tag and repository are one family; another
// repository (another repoid in the URL) or another architecture is
// another family, so that no root starts from a snapshot of other
// packages.
func TestMockFamilyRoot(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "koji"), 0o755)
	write := func(name, repo, arch string) {
		cfg := "# Koji buildroot name: " + name + "\n" +
			"config_opts['root'] = '" + name + "'\n" +
			"config_opts['target_arch'] = '" + arch + "'\n" +
			"config_opts['chroot_setup_cmd'] = 'install @build'\n" +
			"config_opts['package_manager'] = 'dnf'\n" +
			"config_opts['use_bootstrap'] = False\n" +
			"config_opts['yum.conf'] = '''" + rpmdist.DNFConf("file:///repos/td1-build/"+repo+"/"+arch) + "'''\n" +
			"config_opts['macros']['%packager'] = 'Koji'\n"
		if err := os.WriteFile(filepath.Join(dir, "koji", name+".cfg"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("td1-build-1-7890", "7890", "x86_64")
	write("td1-build-2-7890", "7890", "x86_64")
	write("td1-build-3-7891", "7891", "x86_64")
	write("td1-build-4-7890", "7890", "aarch64")
	g, _ := newGlobals()
	g.configDir, g.stateDir = dir, filepath.Join(dir, "state")
	a := &app{g: g, stdout: io.Discard, stderr: io.Discard}
	family := func(name string) string {
		t.Helper()
		lc, err := a.fileConfig("koji/" + name)
		if err != nil {
			t.Fatal(err)
		}
		rc := *lc.build.RPM
		return familyRoot("koji/"+name, lc.vol, &rc)
	}
	f1, f2, f3, f4 := family("td1-build-1-7890"), family("td1-build-2-7890"), family("td1-build-3-7891"), family("td1-build-4-7890")
	if f1 != f2 {
		t.Errorf("two buildroots of one tag and repository are families %s and %s", f1, f2)
	}
	if f1 == f3 || f1 == f4 {
		t.Errorf("another repository (%s) or architecture (%s) shares family %s", f3, f4, f1)
	}
	if !strings.HasPrefix(f1, "koji-") {
		t.Errorf("family %s is not named after the config's directory", f1)
	}
	if !isFamilyName("koji/x") || isFamilyName("x") || isFamilyName("/srv/results/configs/child.cfg") {
		t.Error("isFamilyName")
	}
}
