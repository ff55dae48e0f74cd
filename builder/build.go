// Package builder runs builds inside workdirs: it makes sure each config
// is bootstrapped exactly once (the Manager's init lock), clones a workdir
// per build, runs the build command in a sandbox, collects results and
// removes the workdir, many builds at a time.
package builder

import (
	"fmt"
	"time"
)

// Request is what a client asks for.
type Request struct {
	Config    string   `json:"config"`
	Source    string   `json:"source,omitempty"`    // host directory, bind-mounted read-only at /builddir/source
	Snapshot  string   `json:"snapshot,omitempty"`  // default: the config's current snapshot
	UniqueExt string   `json:"uniqueext,omitempty"` // default: b-<id>
	Keep      bool     `json:"keep,omitempty"`      // keep the workdir afterwards
	Network   bool     `json:"network,omitempty"`
	Timeout   Duration `json:"timeout,omitempty"`
	Command   []string `json:"command,omitempty"` // default: the config's build command
	// Limits lower (or, for root, raise) the config's and the host's.
	Limits Limits `json:"limits,omitzero"`
	// RPMRequest makes it an RPM build (srpm, or spec and sources).
	RPMRequest
	// InPlace and ResultDir come only from a caller in the same process
	// (thinroot mock), never through the API: InPlace builds in the
	// existing workdir of UniqueExt, as mock --no-clean does, and
	// ResultDir is where results and logs go (kept, logs appended)
	// instead of beside the workdir.
	InPlace   bool   `json:"-"`
	ResultDir string `json:"-"`
}

// States of a build. The first ones are phases of a running build; the
// last ones are final.
const (
	StateQueued          = "queued"
	StateWaitingInit     = "waiting-init"
	StateBootstrapping   = "bootstrapping"
	StateCreatingWorkdir = "creating-workdir"
	StateBuilding        = "building"
	StateCollecting      = "collecting"

	StateSucceeded   = "succeeded"
	StateFailed      = "failed"      // the build command failed
	StateError       = "error"       // thinroot could not run it
	StateCancelled   = "cancelled"   // by a user
	StateTimedOut    = "timed-out"   // over its timeout
	StateInterrupted = "interrupted" // the daemon died while it ran
)

// Final tells whether a state is final.
func Final(state string) bool {
	switch state {
	case StateSucceeded, StateFailed, StateError, StateCancelled, StateTimedOut, StateInterrupted:
		return true
	}
	return false
}

// Build is the record of one build, kept as build.json beside its log.
type Build struct {
	ID        string    `json:"id"`
	Request   Request   `json:"request"`
	State     string    `json:"state"`
	Submitted time.Time `json:"submitted"`
	Started   time.Time `json:"started,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
	// Phases records when each state was entered.
	Phases []Phase `json:"phases"`
	// Owner is the uid that submitted it; the build runs as BuildUID.
	Owner    int `json:"owner"`
	BuildUID int `json:"build_uid"`
	BuildGID int `json:"build_gid"`
	// Bootstrapped is set on the build that ran the config's bootstrap.
	Bootstrapped bool   `json:"bootstrapped"`
	Snapshot     string `json:"snapshot,omitempty"` // the snapshot actually used
	UniqueExt    string `json:"uniqueext"`
	Workdir      string `json:"workdir,omitempty"` // the workdir's mounted root
	ResultDir    string `json:"result_dir,omitempty"`
	// ExitCode is the build's exit status: its command's (128+N when
	// signal N killed it), or ExitTimedOut when it ran over its timeout.
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
	// RPM is set on RPM builds.
	RPM *RPMRecord `json:"rpm,omitempty"`
	// Limits are the build's resource limits in force; Usage what its
	// cgroup used (bootstrap included), once it ended.
	Limits Limits `json:"limits,omitzero"`
	Usage  *Usage `json:"usage,omitempty"`
}

// ExitTimedOut is the exit status recorded for a build that ran over its
// timeout, whatever its command's processes died of: mock's status for a
// command timeout (commandTimeoutExpired), which thinroot build exits with.
const ExitTimedOut = 11

// Phase is one state change.
type Phase struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
}

// Duration is a time.Duration that reads and writes as "90s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" || s == `""` || s == "0" {
		*d = 0
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative (0 means no limit)", s)
	}
	*d = Duration(v)
	return nil
}
