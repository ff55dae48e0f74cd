package mockcfg

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/thinroot/thinroot/internal/testguard"
)

// TestMain pins the host facts mock reads from the running system, so that
// results do not depend on the machine (the reference values were made
// with uid 0, no mock group and a host whose fqdn is localhost).
func TestMain(m *testing.M) {
	realHost = []any{hostUID, hostArch, mockGID, hostName, runUUID}
	hostUID = func() int { return 0 }
	hostArch = func() string { return "x86_64" }
	mockGID = func() (int, bool) { return 0, false }
	hostName = func() string { return "localhost" }
	runUUID = func() string { return "00000000-0000-4000-8000-000000000000" }
	os.Exit(testguard.Main(m))
}

// realHost keeps the real host facts for tests that compare with mock run
// on this host.
var realHost []any

func useRealHost(t testing.TB) {
	pinned := []any{hostUID, hostArch, mockGID, hostName, runUUID}
	set := func(v []any) {
		hostUID, hostArch, mockGID = v[0].(func() int), v[1].(func() string), v[2].(func() (int, bool))
		hostName, runUUID = v[3].(func() string), v[4].(func() string)
	}
	set(realHost)
	t.Cleanup(func() { set(pinned) })
}

// writeTree writes files (path -> content) under a new temporary directory.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadTree loads config name from a config dir made of files, with an
// empty home.
func loadTree(t testing.TB, files map[string]string, name string) (*Config, error) {
	t.Helper()
	l := &Loader{ConfigDir: writeTree(t, files), Home: t.TempDir()}
	return l.Load(name)
}

func mustLoadTree(t testing.TB, files map[string]string, name string) *Config {
	t.Helper()
	c, err := loadTree(t, files, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustGet(t testing.TB, c *Config, path ...string) any {
	t.Helper()
	v, ok := c.Get(path...)
	if !ok {
		t.Fatalf("%s: missing", keyPath(path))
	}
	return v
}
