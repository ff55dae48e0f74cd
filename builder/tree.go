package builder

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The builder feeds the tree's builds/ directory (fsview.Builds and
// fsview.BuildLogs): one directory per build with status, log, spec and
// result. Everything is answered from memory or from the log file.

// BuildIDs lists builds, oldest first (IDs sort by submission time).
func (b *Builder) BuildIDs() []string {
	b.mu.Lock()
	ids := make([]string, 0, len(b.builds))
	for id := range b.builds {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	sort.Strings(ids)
	return ids
}

// BuildFile renders a build's "status" or "spec" ("log" is a file).
func (b *Builder) BuildFile(id, name string) ([]byte, error) {
	rec, err := b.Get(id)
	if err != nil {
		return nil, err
	}
	switch name {
	case "status":
		return []byte(StatusText(rec)), nil
	case "spec":
		data, err := json.MarshalIndent(rec.Request, "", "  ")
		return append(data, '\n'), err
	case "log":
		return nil, fmt.Errorf("%w: the log is a file", ErrNoBuild)
	}
	return nil, fmt.Errorf("%w: %s/%s", ErrNoBuild, id, name)
}

// BuildResult is the build's result directory.
func (b *Builder) BuildResult(id string) string {
	rec, err := b.Get(id)
	if err != nil {
		return ""
	}
	return rec.ResultDir
}

// BuildLogPath is the build's log file.
func (b *Builder) BuildLogPath(id string) string {
	if _, err := b.Get(id); err != nil {
		return ""
	}
	return b.logPath(id)
}

// StatusText renders a build as "key: value" lines, like the pool stats.
func StatusText(r Build) string {
	var s strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&s, "%s: %v\n", k, v) }
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	kv("id", r.ID)
	kv("config", r.Request.Config)
	kv("state", r.State)
	if r.ExitCode != nil {
		kv("exit_code", *r.ExitCode)
	}
	if r.Error != "" {
		kv("error", strings.ReplaceAll(r.Error, "\n", " "))
	}
	kv("uniqueext", r.UniqueExt)
	if r.Snapshot != "" {
		kv("snapshot", r.Snapshot)
	}
	kv("bootstrapped", r.Bootstrapped)
	kv("owner_uid", r.Owner)
	kv("build_uid", r.BuildUID)
	kv("submitted", ts(r.Submitted))
	kv("started", ts(r.Started))
	kv("finished", ts(r.Finished))
	if !r.Started.IsZero() {
		end := r.Finished
		if end.IsZero() {
			end = time.Now()
		}
		kv("elapsed", end.Sub(r.Started).Round(time.Millisecond))
	}
	if u := r.Usage; u != nil {
		kv("memory_peak", u.MemoryPeak)
		kv("cpu_seconds", fmt.Sprintf("%.3f", u.CPUSeconds))
		kv("pids_peak", u.PidsPeak)
	}
	if r.Workdir != "" {
		kv("workdir", r.Workdir)
	}
	if r.ResultDir != "" {
		kv("result", r.ResultDir)
	}
	if r.RPM != nil {
		if r.RPM.Package != "" {
			kv("package", r.RPM.Package)
		}
		kv("builddep_hit", r.RPM.BuilddepHit)
		kv("package_manager_runs", r.RPM.PackageManagerRuns)
		for _, rd := range r.RPM.Rounds {
			how := "miss"
			if rd.Hit {
				how = "hit"
			}
			kv("builddep_snapshot", fmt.Sprintf("%s %s (%s, %d BuildRequires)", rd.Snapshot, how, rd.Phase, rd.Requires))
		}
	}
	return s.String()
}
