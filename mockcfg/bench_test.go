package mockcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoadAll loads every config (NAME.cfg and eol/NAME.cfg) of the
// directory named by THINROOT_MOCK_CONFIGS, e.g. mock-core-configs'
// etc/mock, and reports configs per second. Configs that fail to load
// (some shipped ones are broken upstream) count as loaded; they are
// listed once.
func BenchmarkLoadAll(b *testing.B) {
	dir := os.Getenv("THINROOT_MOCK_CONFIGS")
	if dir == "" {
		b.Skip("THINROOT_MOCK_CONFIGS is not set: point it at a mock config dir (such as mock-core-configs/etc/mock) to run")
	}
	var names []string
	for _, pat := range []string{"*.cfg", "eol/*.cfg"} {
		files, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(dir, f)
			n := strings.TrimSuffix(rel, ".cfg")
			if !notConfigs[n] {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		b.Fatalf("no configs in %s", dir)
	}
	l := &Loader{ConfigDir: dir, Home: b.TempDir()}
	failed := map[string]error{}
	b.ResetTimer()
	for b.Loop() {
		for _, n := range names {
			if _, err := l.Load(n); err != nil {
				failed[n] = err
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(names))/b.Elapsed().Seconds(), "configs/s")
	b.ReportMetric(float64(len(failed)), "failed")
	for n, err := range failed {
		b.Logf("%s: %v", n, err)
	}
}
