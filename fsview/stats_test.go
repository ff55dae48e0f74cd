package fsview

import (
	"strings"
	"testing"

	"github.com/thinroot/thinroot/lvm"
)

func TestStatsText(t *testing.T) {
	s := lvm.Stats{Backend: "file", Pool: "p", SizeBytes: 100, UsedBytes: 40, FreeBytes: 60, DataPercent: 40,
		WarnPercent: 75, RefusePercent: 90, Status: lvm.StatusOK}
	txt := StatsText(s)
	for _, k := range []string{"backend", "pool", "size_bytes", "used_bytes", "free_bytes", "data_percent",
		"metadata_percent", "thin_volumes", "configs", "snapshots", "workdirs", "spares", "warn_percent", "refuse_percent", "status", "updated"} {
		if !strings.Contains(txt, "\n"+k+": ") && !strings.HasPrefix(txt, k+": ") {
			t.Errorf("stats text lacks %q:\n%s", k, txt)
		}
	}
	if !strings.Contains(string(StatsJSON(s)), `"data_percent": 40`) {
		t.Errorf("stats json: %s", StatsJSON(s))
	}
}
