package lvm

import (
	"time"
)

// State is an immutable picture of every pool, config, snapshot and
// workdir the Manager knows, taken at one refresh. Readers (the FUSE tree,
// the CLI) never see it change under them; the Manager publishes a new one
// after every refresh and every operation. Slices are sorted by name.
type State struct {
	Generation uint64
	Taken      time.Time
	Pools      []PoolState
}

// PoolState is one pool with its configs.
type PoolState struct {
	Name    string
	Backend string
	Stats   Stats
	Configs []ConfigState
	// Err is set when the pool could not be scanned at this refresh.
	Err string
}

// Stats are the figures of a pool's stats files (DESIGN "The tree").
type Stats struct {
	Backend         string    `json:"backend"`
	Pool            string    `json:"pool"`
	SizeBytes       int64     `json:"size_bytes"`
	UsedBytes       int64     `json:"used_bytes"`
	FreeBytes       int64     `json:"free_bytes"`
	DataPercent     float64   `json:"data_percent"`
	MetadataPercent float64   `json:"metadata_percent"`
	MetadataLabel   string    `json:"metadata_label"`
	ThinVolumes     int       `json:"thin_volumes"`
	Configs         int       `json:"configs"`
	Snapshots       int       `json:"snapshots"`
	Workdirs        int       `json:"workdirs"`
	Spares          int       `json:"spares"` // warm spares kept ready: invisible, not in ThinVolumes
	WarnPercent     float64   `json:"warn_percent"`
	RefusePercent   float64   `json:"refuse_percent"`
	Status          string    `json:"status"` // ok | warn | full
	Health          string    `json:"health,omitempty"`
	Updated         time.Time `json:"updated"`
}

// Status values of Stats.Status.
const (
	StatusOK   = "ok"
	StatusWarn = "warn"
	StatusFull = "full"
)

// ConfigState is one config (a mock root) in a pool.
type ConfigState struct {
	Root string
	Pool string
	// Known is true when a config file was registered for it; configs
	// found only through their volumes are listed too.
	Known bool
	// State is "uninitialized", "initializing", "ready" or "failed".
	State string
	// StateDetail completes State: "since <time>, pid <n>" while
	// initializing, the reason when failed.
	StateDetail string
	// Current is the default snapshot (the record for ext "head"), "" if none.
	Current   string
	Snapshots []SnapshotState
	// Workdirs lists every workdir of the config; each also appears under
	// its origin snapshot.
	Workdirs []WorkdirState
}

// Config states.
const (
	StateUninitialized = "uninitialized"
	StateInitializing  = "initializing"
	StateReady         = "ready"
	StateFailed        = "failed"
)

// SnapshotState is one snapshot of a config.
type SnapshotState struct {
	Name string
	// LV is the snapshot's volume name (on lvm2 its LV name; the field
	// keeps the name readers know).
	LV          string
	Origin      string // the volume it was taken from, "" when unknown
	Created     time.Time
	VirtualSize int64
	UsedBytes   int64
	Workdirs    []WorkdirState // made from this snapshot
}

// WorkdirState is one working volume.
type WorkdirState struct {
	Root string
	Ext  string
	// LV is the workdir's volume name (on lvm2 its LV name).
	LV          string
	Snapshot    string // the snapshot it was made from (or is recorded against)
	Created     time.Time
	VirtualSize int64
	UsedBytes   int64
	Mountpoint  string // where it is (or will be) mounted
	Mounted     bool
	// Device is what is mounted: a block device, or the directory a
	// directory backend (btrfs) bind-mounts.
	Device string
	// Busy is set while a build holds it.
	Busy string
}

// Config looks up a config in the state by root.
func (s *State) Config(root string) (*PoolState, *ConfigState) {
	if s == nil {
		return nil, nil
	}
	for i := range s.Pools {
		p := &s.Pools[i]
		for j := range p.Configs {
			if p.Configs[j].Root == root {
				return p, &p.Configs[j]
			}
		}
	}
	return nil, nil
}

// Pool looks up a pool by name.
func (s *State) Pool(name string) *PoolState {
	if s == nil {
		return nil
	}
	for i := range s.Pools {
		if s.Pools[i].Name == name {
			return &s.Pools[i]
		}
	}
	return nil
}

// Snapshot looks up a snapshot of the config.
func (c *ConfigState) Snapshot(name string) *SnapshotState {
	for i := range c.Snapshots {
		if c.Snapshots[i].Name == name {
			return &c.Snapshots[i]
		}
	}
	return nil
}

// Workdir looks up a workdir of the config by ext.
func (c *ConfigState) Workdir(ext string) *WorkdirState {
	for i := range c.Workdirs {
		if c.Workdirs[i].Ext == ext {
			return &c.Workdirs[i]
		}
	}
	return nil
}
