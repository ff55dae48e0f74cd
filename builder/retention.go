package builder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/thinroot/thinroot/lvm"
)

// Retention says which finished builds a daemon keeps: their records,
// logs and result directories. Zero values keep everything. Builds go
// oldest first; a build still queued or running never goes, nor one
// whose workdir was kept and is still there, unless Kept is set (and
// then that workdir goes too).
type Retention struct {
	MaxAge   Duration `json:"max_age,omitempty"`   // finished longer ago than this go
	MaxCount int      `json:"max_count,omitempty"` // the newest this many finished builds stay
	MaxBytes int64    `json:"max_bytes,omitempty"` // records, logs and results together
	Kept     bool     `json:"kept,omitempty"`
	// Every is how often the daemon applies its retention (default 10
	// minutes); 0 with no limit set never.
	Every time.Duration `json:"-"`
}

// IsZero tells whether nothing would ever be pruned.
func (r Retention) IsZero() bool { return r.MaxAge == 0 && r.MaxCount == 0 && r.MaxBytes == 0 }

// Pruned is one build that retention removed.
type Pruned struct {
	ID     string `json:"id"`
	Config string `json:"config"`
	Bytes  int64  `json:"bytes"`
	Why    string `json:"why"` // "age", "count" or "space"
}

// Prune removes the finished builds that r does not keep, oldest first,
// and returns them.
func (b *Builder) Prune(ctx context.Context, r Retention) ([]Pruned, error) {
	b.pruneMu.Lock()
	defer b.pruneMu.Unlock()
	b.mu.Lock()
	var done []Build
	for _, e := range b.builds {
		if Final(e.b.State) {
			done = append(done, e.b)
		}
	}
	b.mu.Unlock()
	sort.Slice(done, func(i, j int) bool { return endOf(done[i]).Before(endOf(done[j])) })

	// A result directory is a build's only while no later build of the
	// same unique-ext has taken its place (the earlier results were moved
	// aside then).
	owner := map[string]string{}
	for _, rec := range done {
		if rec.ResultDir != "" {
			owner[rec.ResultDir] = rec.ID
		}
	}
	sizes := map[string]int64{}
	var total int64
	for _, rec := range done {
		n := dirSize(b.buildDir(rec.ID))
		if rec.ResultDir != "" && owner[rec.ResultDir] == rec.ID {
			n += dirSize(rec.ResultDir)
		}
		sizes[rec.ID] = n
		total += n
	}
	now := time.Now()
	var out []Pruned
	for i, rec := range done {
		why := ""
		switch {
		case r.MaxAge > 0 && now.Sub(endOf(rec)) > time.Duration(r.MaxAge):
			why = "age"
		case r.MaxCount > 0 && i < len(done)-r.MaxCount:
			why = "count"
		case r.MaxBytes > 0 && total > r.MaxBytes:
			why = "space"
		}
		if why == "" || (!r.Kept && b.hasKeptWorkdir(rec)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if err := b.removeBuild(ctx, rec, owner[rec.ResultDir] == rec.ID); err != nil {
			b.log.Warn("prune a build", "build", rec.ID, "err", err)
			continue
		}
		total -= sizes[rec.ID]
		out = append(out, Pruned{ID: rec.ID, Config: rec.Request.Config, Bytes: sizes[rec.ID], Why: why})
		b.log.Info("pruned a build", "build", rec.ID, "config", rec.Request.Config, "why", why, "bytes", sizes[rec.ID])
	}
	return out, nil
}

func endOf(rec Build) time.Time {
	if !rec.Finished.IsZero() {
		return rec.Finished
	}
	return rec.Submitted
}

// hasKeptWorkdir tells whether the build kept its workdir and it is
// still there.
func (b *Builder) hasKeptWorkdir(rec Build) bool {
	if !rec.Request.Keep || b.opts.Manager == nil {
		return false
	}
	_, cs := b.opts.Manager.State().Config(rec.Request.Config)
	return cs != nil && cs.Workdir(rec.UniqueExt) != nil
}

// removeBuild forgets a finished build and removes its record, log,
// result directory (when it is still the build's), its temporary
// snapinfo record, and its kept workdir.
func (b *Builder) removeBuild(ctx context.Context, rec Build, results bool) error {
	if b.hasKeptWorkdir(rec) {
		if err := b.opts.Manager.RemoveWorkdir(ctx, rec.Request.Config, rec.UniqueExt); err != nil && !errors.Is(err, lvm.ErrNotFound) {
			return err
		}
	}
	b.mu.Lock()
	delete(b.builds, rec.ID)
	b.notifyLocked()
	b.mu.Unlock()
	var errs []error
	if results && rec.ResultDir != "" && filepath.Base(rec.ResultDir) == "result" {
		errs = append(errs, os.RemoveAll(rec.ResultDir))
		// mock's <basedir>/<root>-<ext>/ goes too once nothing is left.
		os.Remove(filepath.Dir(rec.ResultDir))
	}
	b.dropTempRecords(rec)
	errs = append(errs, os.RemoveAll(b.buildDir(rec.ID)))
	return errors.Join(errs...)
}

// dropTempRecords removes the snapinfo record (mock's current snapshot
// of a workdir) of a build whose unique-ext was its own (b-<id>) once
// its workdir is gone: nobody will ever ask for it again.
func (b *Builder) dropTempRecords(rec Build) {
	m := b.opts.Manager
	if m == nil || rec.Request.UniqueExt != "" || !strings.HasPrefix(rec.UniqueExt, "b-") {
		return
	}
	if _, cs := m.State().Config(rec.Request.Config); cs != nil && cs.Workdir(rec.UniqueExt) != nil {
		return
	}
	cfg, err := m.Config(rec.Request.Config)
	if err != nil {
		return
	}
	os.Remove(cfg.SnapinfoPath(rec.UniqueExt))
}

// dirSize adds up the sizes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// retain applies the daemon's retention every r.Every until ctx ends.
func (b *Builder) retain(ctx context.Context) {
	r := b.opts.Retention
	every := r.Every
	if every <= 0 {
		every = 10 * time.Minute
	}
	for {
		if _, err := b.Prune(ctx, r); err != nil && ctx.Err() == nil {
			b.log.Warn("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
