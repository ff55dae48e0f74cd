package faults

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReportEnv names the file the suite appends its results to, one JSON
// object per line (a Case). Unset, nothing is written. "stdout" prints
// each line on standard output after ConsoleMark instead: in the VM,
// files written go to a tmpfs, and the console is what comes back.
const ReportEnv = "THINROOT_FAULTS_REPORT"

// ConsoleMark starts a report line printed on standard output.
const ConsoleMark = "THINROOT-FAULTS-CASE "

// Case is one line of the report: one scenario case (a crash point, a
// race round set, a bad-input class) with how often it ran and what it
// found.
type Case struct {
	Suite   string `json:"suite"`   // crash, fuse-kill, pool-full, races, bad-input, security, fuzz
	Case    string `json:"case"`    // the point or check
	Backend string `json:"backend"` // file, lvm2, or "" when no backend is involved
	// Runs is how many times the case was exercised (kills, rounds, inputs).
	Runs int `json:"runs"`
	// Checks is how many assertions were made across the runs.
	Checks int `json:"checks"`
	// Failed is set when the case failed in this run.
	Failed bool `json:"failed"`
	// Outcomes counts how the runs ended (crash cases: "rolled-back",
	// "completed").
	Outcomes map[string]int `json:"outcomes,omitempty"`
	// Left is a known failure this suite tolerates, with its reason.
	Left    string  `json:"left,omitempty"`
	Seconds float64 `json:"seconds"`
	Commit  string  `json:"commit,omitempty"`
}

var reportMu sync.Mutex

// Rec records one case; create it with Record, count with Run, Check and
// Outcome. It is written when the test ends, with the test's verdict.
type Rec struct {
	t     testing.TB
	mu    sync.Mutex
	c     Case
	start time.Time
}

// Record starts recording a case for t; the line is written at t's
// cleanup.
func Record(t testing.TB, suite, name, backend string) *Rec {
	r := &Rec{t: t, c: Case{Suite: suite, Case: name, Backend: backend}, start: time.Now()}
	t.Cleanup(r.write)
	return r
}

// Run counts one run.
func (r *Rec) Run() {
	r.mu.Lock()
	r.c.Runs++
	r.mu.Unlock()
}

// Runs adds n runs.
func (r *Rec) Runs(n int) {
	r.mu.Lock()
	r.c.Runs += n
	r.mu.Unlock()
}

// Check counts an assertion and fails the test (going on) when ok is false.
func (r *Rec) Check(ok bool, format string, args ...any) bool {
	r.t.Helper()
	r.mu.Lock()
	r.c.Checks++
	r.mu.Unlock()
	if !ok {
		r.t.Errorf(format, args...)
	}
	return ok
}

// Must is Check that stops the test.
func (r *Rec) Must(ok bool, format string, args ...any) {
	r.t.Helper()
	if !r.Check(ok, format, args...) {
		r.t.FailNow()
	}
}

// Outcome counts how a run ended.
func (r *Rec) Outcome(o string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c.Outcomes == nil {
		r.c.Outcomes = map[string]int{}
	}
	r.c.Outcomes[o]++
}

// Leave marks the case as a known failure the suite tolerates, with the
// reason RELIABILITY.md gives.
func (r *Rec) Leave(reason string) {
	r.mu.Lock()
	r.c.Left = reason
	r.mu.Unlock()
}

func (r *Rec) write() {
	path := os.Getenv(ReportEnv)
	if path == "" {
		return
	}
	r.mu.Lock()
	c := r.c
	r.mu.Unlock()
	c.Failed = r.t.Failed()
	if r.t.Skipped() {
		return
	}
	c.Seconds = float64(time.Since(r.start).Round(10*time.Millisecond)) / float64(time.Second)
	c.Commit = os.Getenv("THINROOT_FAULTS_COMMIT")
	data, err := json.Marshal(c)
	if err != nil {
		r.t.Errorf("report: %v", err)
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	if path == "stdout" {
		os.Stdout.Write(append(append([]byte(ConsoleMark), data...), '\n'))
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		r.t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	// One write per line under an exclusive lock: test binaries of several
	// packages may append at once.
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	f.Write(append(data, '\n'))
}

// ReadReport reads a report file.
func ReadReport(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Case
	for _, line := range splitLines(data) {
		// Lines copied from a console keep their mark (and whatever came
		// before it on the line).
		if i := bytes.Index(line, []byte(ConsoleMark)); i >= 0 {
			line = line[i+len(ConsoleMark):]
		} else if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
			continue
		}
		var c Case
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Suite != out[j].Suite {
			return out[i].Suite < out[j].Suite
		}
		return out[i].Case < out[j].Case
	})
	return out, nil
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range data {
		if b == '\n' {
			if i > start {
				out = append(out, data[start:i])
			}
			start = i + 1
		}
	}
	if start < len(data) {
		out = append(out, data[start:])
	}
	return out
}
