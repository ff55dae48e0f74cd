package mockcfg

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"
)

// TestMockAcceptance compares every config of THINROOT_MOCK_CONFIGS with
// what mock computed for it (THINROOT_MOCK_REFERENCE, the output of
// testdata/acceptance/mock_reference.py on the same directory). It is not
// a unit test: it needs mock's sources and configs, so it skips without
// them. The keys thinroot relies on must match exactly; other keys are
// reported, except those that depend on the host or the installation.
func TestMockAcceptance(t *testing.T) {
	dir, refPath := os.Getenv("THINROOT_MOCK_CONFIGS"), os.Getenv("THINROOT_MOCK_REFERENCE")
	if dir == "" || refPath == "" {
		t.Skip("set THINROOT_MOCK_CONFIGS and THINROOT_MOCK_REFERENCE to compare with mock")
	}
	data, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]struct {
		Keys  map[string]any
		Error string
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	useRealHost(t) // mock ran on this host too
	keys := []string{"root", "target_arch", "releasever", "chroot_setup_cmd", "package_manager", "dist", "description", "dnf.conf"}
	skip := map[string]bool{"mock_run_uuid": true, "plugin_dir": true, "config_paths": true, "version": true,
		"config_path": true, "config_file": true, "chrootgid": true, "chrootuid": true, "host_arch": true}
	names := make([]string, 0, len(ref))
	for n := range ref {
		names = append(names, n)
	}
	sort.Strings(names)
	l := &Loader{ConfigDir: dir, Home: t.TempDir()}
	match := map[string]int{}
	loaded, bothFail, full := 0, 0, 0
	for _, n := range names {
		r := ref[n]
		c, err := l.Load(n)
		switch {
		case r.Error != "" && err != nil:
			bothFail++
			t.Logf("%s: fails in mock (%s) and here (%v)", n, r.Error, err)
			continue
		case r.Error != "":
			t.Errorf("%s: mock fails (%s), this package loads it", n, r.Error)
			continue
		case err != nil:
			t.Errorf("%s: mock loads it, this package fails: %v", n, err)
			continue
		}
		loaded++
		js, _ := c.JSON()
		var got map[string]any
		_ = json.Unmarshal(js, &got)
		for _, k := range keys {
			if reflect.DeepEqual(got[k], r.Keys[k]) {
				match[k]++
			} else {
				t.Errorf("%s: %s = %#v, mock has %#v", n, k, got[k], r.Keys[k])
			}
		}
		same := true
		for k, w := range r.Keys {
			if !skip[k] && !reflect.DeepEqual(got[k], w) {
				same = false
				t.Logf("%s: %s differs: %#v, mock has %#v", n, k, got[k], w)
			}
		}
		if same {
			full++
		}
	}
	t.Logf("%d configs: %d loaded by both, %d fail in both", len(names), loaded, bothFail)
	for _, k := range keys {
		t.Logf("%-16s %d/%d match", k, match[k], loaded)
	}
	t.Logf("whole config (less host and install keys) %d/%d match", full, loaded)
}
