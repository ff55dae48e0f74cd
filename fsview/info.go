package fsview

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/mock"
)

// The info files. Each snapshot and each workdir has a ".info" ("key:
// value" lines) and a ".info.json" (the same keys as one JSON object); the
// dot keeps them apart from workdirs, whose names never start with one.
// thinroot's CLI prints the same objects (list-snapshots --json,
// workdir list --json), so a script reads one schema wherever it looks.

// SnapshotInfo is a snapshot as its info files show it.
type SnapshotInfo struct {
	Config string `json:"config"`
	Name   string `json:"name"`
	Volume string `json:"volume"`
	// Origin says in words what the snapshot was taken from, words that
	// stay true after that is gone: "bootstrap" (postinit, taken right
	// after the config's bootstrap), "workdir EXT", "snapshot NAME",
	// "volume LV" (a volume not named by mock's rule) or "unknown".
	Origin string `json:"origin"`
	// OriginVolume is the volume it was taken from at the time; it may
	// since be removed (the base volume always is, once postinit exists).
	OriginVolume     string    `json:"origin_volume,omitempty"`
	Created          time.Time `json:"created,omitzero"`
	VirtualSizeBytes int64     `json:"virtual_size_bytes"`
	UsedBytes        int64     `json:"used_bytes"`
	Workdirs         []string  `json:"workdirs"` // the exts cloned from it
}

// WorkdirInfo is a workdir as its info files show it.
type WorkdirInfo struct {
	Config           string    `json:"config"`
	Ext              string    `json:"ext"`
	State            string    `json:"state"`             // mounted | unmounted
	HeldBy           string    `json:"held_by,omitempty"` // the build using it
	Snapshot         string    `json:"snapshot,omitempty"`
	Volume           string    `json:"volume"`
	Created          time.Time `json:"created,omitzero"`
	Mountpoint       string    `json:"mountpoint"`
	Device           string    `json:"device,omitempty"`
	VirtualSizeBytes int64     `json:"virtual_size_bytes"`
	UsedBytes        int64     `json:"used_bytes"`
}

// NewSnapshotInfo describes snapshot s of config root.
func NewSnapshotInfo(root string, s *lvm.SnapshotState) SnapshotInfo {
	exts := make([]string, len(s.Workdirs))
	for i, w := range s.Workdirs {
		exts[i] = w.Ext
	}
	return SnapshotInfo{Config: root, Name: s.Name, Volume: s.LV, Origin: OriginWords(root, s.Name, s.Origin),
		OriginVolume: s.Origin, Created: Second(s.Created), VirtualSizeBytes: s.VirtualSize, UsedBytes: s.UsedBytes, Workdirs: exts}
}

// NewWorkdirInfo describes workdir w.
func NewWorkdirInfo(w *lvm.WorkdirState) WorkdirInfo {
	state := "unmounted"
	if w.Mounted {
		state = "mounted"
	}
	return WorkdirInfo{Config: w.Root, Ext: w.Ext, State: state, HeldBy: w.Busy, Snapshot: w.Snapshot, Volume: w.LV,
		Created: Second(w.Created), Mountpoint: w.Mountpoint, Device: w.Device, VirtualSizeBytes: w.VirtualSize, UsedBytes: w.UsedBytes}
}

// OriginWords names what snapshot snap of root was taken from, given the
// volume recorded as its origin.
func OriginWords(root, snap, origin string) string {
	if snap == lvm.PostInit {
		return "bootstrap"
	}
	if origin == "" {
		return "unknown"
	}
	if n, ok := mock.ParseVolume(origin, []string{root}); ok && n.Root == root {
		if n.Workdir {
			return "workdir " + n.Name
		}
		return "snapshot " + n.Name
	}
	return "volume " + origin
}

// Second is t in UTC to the second: every time in the tree is RFC 3339
// without fractions.
func Second(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

// Text renders the info as "key: value" lines, the JSON keys in order.
func (s SnapshotInfo) Text() []byte {
	var b strings.Builder
	kv(&b, "config", s.Config)
	kv(&b, "name", s.Name)
	kv(&b, "volume", s.Volume)
	kv(&b, "origin", s.Origin)
	kv(&b, "origin_volume", orDash(s.OriginVolume))
	kv(&b, "created", fmtTime(s.Created))
	kv(&b, "virtual_size_bytes", s.VirtualSizeBytes)
	kv(&b, "used_bytes", s.UsedBytes)
	kv(&b, "workdirs", orDash(strings.Join(s.Workdirs, " ")))
	return []byte(b.String())
}

// Text renders the info as "key: value" lines, the JSON keys in order.
func (w WorkdirInfo) Text() []byte {
	var b strings.Builder
	kv(&b, "config", w.Config)
	kv(&b, "ext", w.Ext)
	kv(&b, "state", w.State)
	kv(&b, "held_by", orDash(w.HeldBy))
	kv(&b, "snapshot", orDash(w.Snapshot))
	kv(&b, "volume", w.Volume)
	kv(&b, "created", fmtTime(w.Created))
	kv(&b, "mountpoint", w.Mountpoint)
	kv(&b, "device", orDash(w.Device))
	kv(&b, "virtual_size_bytes", strconv.FormatInt(w.VirtualSizeBytes, 10))
	kv(&b, "used_bytes", strconv.FormatInt(w.UsedBytes, 10))
	return []byte(b.String())
}

// jsonFile renders v as the tree's JSON files are: indented, one newline.
func jsonFile(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// PoolStats is a pool's stats as the tree shows them: updated to the
// second, like every other time in the tree.
func PoolStats(s lvm.Stats) lvm.Stats {
	s.Updated = Second(s.Updated)
	return s
}
