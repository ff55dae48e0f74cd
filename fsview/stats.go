package fsview

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/thinroot/thinroot/lvm"
)

// The stats files of a pool, rendered here beside the tree that shows
// them (thinroot pool stats prints the same).

// StatsText renders a pool's figures as "key: value" lines, one per
// figure, in the order DESIGN lists them: easy to grep, awk and read.
func StatsText(s lvm.Stats) string {
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s: %v\n", k, v) }
	kv("backend", s.Backend)
	kv("pool", s.Pool)
	kv("size_bytes", s.SizeBytes)
	kv("used_bytes", s.UsedBytes)
	kv("free_bytes", s.FreeBytes)
	kv("data_percent", fmt.Sprintf("%.2f", s.DataPercent))
	kv("metadata_percent", fmt.Sprintf("%.2f", s.MetadataPercent))
	if s.MetadataLabel != "" {
		kv("metadata_label", s.MetadataLabel)
	}
	kv("thin_volumes", s.ThinVolumes)
	kv("configs", s.Configs)
	kv("snapshots", s.Snapshots)
	kv("workdirs", s.Workdirs)
	kv("spares", s.Spares)
	kv("warn_percent", fmt.Sprintf("%.0f", s.WarnPercent))
	kv("refuse_percent", fmt.Sprintf("%.0f", s.RefusePercent))
	kv("status", s.Status)
	if s.Health != "" {
		kv("health", s.Health)
	}
	kv("updated", s.Updated.UTC().Format(time.RFC3339Nano))
	return b.String()
}

// StatsJSON renders a pool's figures as one JSON object with the same
// keys as StatsText.
func StatsJSON(s lvm.Stats) []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}
