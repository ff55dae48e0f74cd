package rpmdist_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/rpmdist"
	"github.com/thinroot/thinroot/mockcfg"
)

// The checked-in config is what MockConfig writes for the stable path, and
// mock's config language reads it as a dnf bootstrap of @buildsys-build.
// THINROOT_UPDATE_CONFIG=1 rewrites it.
func TestCheckedInConfig(t *testing.T) {
	recipe, err := rpmdist.RecipeDir()
	if err != nil {
		t.Fatal(err)
	}
	configs := filepath.Join(filepath.Dir(filepath.Dir(recipe)), "testdata", "configs")
	path := filepath.Join(configs, "testdist-x86_64.cfg")
	want := rpmdist.MockConfig("testdist-x86_64", "file://"+rpmdist.StableRepo)
	if os.Getenv("THINROOT_UPDATE_CONFIG") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s differs from rpmdist.MockConfig (THINROOT_UPDATE_CONFIG=1 rewrites it):\n%s", path, got)
	}
	cfg, err := (&mockcfg.Loader{ConfigDir: configs, Home: t.TempDir()}).Load("testdist-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfg.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	if st.Root != "testdist-x86_64" || st.Releasever != rpmdist.Releasever || st.PackageManager != "dnf" ||
		strings.Join(st.ChrootSetupCmd, " ") != "install @buildsys-build" || st.Thinroot.Backend != "file" ||
		st.LVM.Size != 2<<30 || st.Thinroot.PoolSize != 6<<30 || len(st.Thinroot.Bootstrap) != 0 {
		t.Errorf("settings = %+v", st)
	}
	for _, w := range []string{"baseurl=file://" + rpmdist.StableRepo + "\n", "reposdir=/dev/null\n", "gpgcheck=0\n", "user_agent=Mock (testdist-x86_64; x86_64)\n"} {
		if !strings.Contains(st.DnfConf, w) {
			t.Errorf("dnf.conf lacks %q:\n%s", w, st.DnfConf)
		}
	}
}
