package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/lvm"
)

// JSON output. Every command that lists or shows something takes --json
// and prints one schema style (thinroot(1), JSON OUTPUT):
//
//   - keys are snake_case; names are the CLI's (config, ext, uniqueext);
//   - a list is a JSON array, empty when there is nothing (never null);
//     one thing is an object;
//   - times are RFC 3339 strings in UTC, left out when unknown;
//   - sizes are integers in bytes, keys ending in _bytes; percentages are
//     numbers, keys ending in _percent; durations are strings such as
//     "90s";
//   - optional values that are not set are left out, never "-";
//   - one thing has one shape wherever it appears: a workdir of
//     `workdir list --json` is the tree's <ext>/.info.json object, a
//     snapshot of `list-snapshots --json` its .info.json plus "current",
//     a pool of `pool list --json` its stats.json, a build of
//     `builds --json` the API's build record.
//
// The one exception is `config show NAME --json`, which prints the config
// exactly as mock computes it, with mock's own keys (tools compare it with
// mock's); `config show NAME --resolved --json` prints what thinroot uses,
// in this style.

// writeJSON prints v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress prints the phases of a long command on standard error with
// the time since it started, as `thinroot build` does.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

func (p *progress) phase(format string, args ...any) {
	fmt.Fprintf(p.w, "thinroot: [%s] %s\n", fmtElapsed(p.elapsed()), fmt.Sprintf(format, args...))
}

func (p *progress) done(format string, args ...any) { p.phase("done: "+format, args...) }

func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// configJSON is a config as the daemon's GET /v1/configs shows it.
type configJSON struct {
	Config    string                `json:"config"`
	Pool      string                `json:"pool"`
	State     string                `json:"state"` // uninitialized | initializing | ready | failed
	Current   string                `json:"current,omitempty"`
	Snapshots []fsview.SnapshotInfo `json:"snapshots"`
	Workdirs  []fsview.WorkdirInfo  `json:"workdirs"`
}

func configsJSON(st *lvm.State) []configJSON {
	out := []configJSON{}
	for _, p := range st.Pools {
		for _, cs := range p.Configs {
			c := configJSON{Config: cs.Root, Pool: p.Name, State: cs.State, Current: cs.Current,
				Snapshots: []fsview.SnapshotInfo{}, Workdirs: []fsview.WorkdirInfo{}}
			for i := range cs.Snapshots {
				c.Snapshots = append(c.Snapshots, fsview.NewSnapshotInfo(cs.Root, &cs.Snapshots[i]))
			}
			for i := range cs.Workdirs {
				c.Workdirs = append(c.Workdirs, fsview.NewWorkdirInfo(&cs.Workdirs[i]))
			}
			out = append(out, c)
		}
	}
	return out
}
