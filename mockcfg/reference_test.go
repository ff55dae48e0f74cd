package mockcfg

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"
)

// testdata/mock-reference.json holds what mock itself computed (its own
// load_config, then the repo_arch/rpmbuild_arch step of its command line
// handling, reading every key) for the configs in testdata/mock, without
// the keys that depend on the installation (paths, plugin list, version,
// run id). The fixtures mimic the constructs of mock-core-configs.
func TestMatchesMockReference(t *testing.T) {
	data, err := os.ReadFile("testdata/mock-reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]map[string]any
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	l := &Loader{ConfigDir: "testdata/mock", Home: t.TempDir()}
	names := make([]string, 0, len(ref))
	for n := range ref {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := ref[name]
		t.Run(name, func(t *testing.T) {
			c, err := l.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			js, err := c.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatal(err)
			}
			for k, w := range want {
				if g, ok := got[k]; !ok {
					t.Errorf("%s: missing, mock has %v", k, w)
				} else if !reflect.DeepEqual(g, w) {
					t.Errorf("%s:\n got %#v\nwant %#v", k, g, w)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok && !ignoredRefKeys[k] {
					t.Errorf("%s: not in mock's config", k)
				}
			}
		})
	}
}

var ignoredRefKeys = map[string]bool{"config_paths": true, "config_path": true, "config_file": true,
	"mock_run_uuid": true, "version": true, "host_arch": true, "plugins": true}
