package main

import (
	"strings"
	"testing"

	"github.com/thinroot/thinroot/builder"
)

// config_opts['thinroot'] memory_max, pids_max and cpus, as a config file
// may write them.
func TestConfigLimits(t *testing.T) {
	l, err := configLimits(map[string]any{"memory_max": "2G", "pids_max": int64(4096), "cpus": 1.5})
	if err != nil || l != (builder.Limits{MemoryMax: 2 << 30, PidsMax: 4096, CPUs: 1.5}) {
		t.Fatalf("limits %+v, %v", l, err)
	}
	if l, err := configLimits(map[string]any{"memory_max": int64(1 << 30), "cpus": int64(2)}); err != nil || l.MemoryMax != 1<<30 || l.CPUs != 2 {
		t.Fatalf("numbers: %+v, %v", l, err)
	}
	for _, bad := range []map[string]any{
		{"memory_max": "lots"}, {"memory_max": "1M"}, {"pids_max": "many"}, {"pids_max": int64(-1)}, {"cpus": "fast"}, {"cpus": -1.0},
	} {
		if _, err := configLimits(bad); err == nil || !strings.Contains(err.Error(), "thinroot") {
			t.Errorf("%v accepted (%v)", bad, err)
		}
	}
	if got := limitsLine(builder.Limits{MemoryMax: 2 << 30, PidsMax: 10, CPUs: 0.5}); got != "memory_max 2.0 GiB, pids_max 10, cpus 0.5" {
		t.Fatalf("limitsLine: %q", got)
	}
}
