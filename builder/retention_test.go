package builder_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/testguard"
)

// Retention removes exactly the builds it does not keep, oldest first:
// their records, logs, results and temporary snapinfo records; never a
// running build, nor one whose kept workdir is still there unless told.
func TestRetentionRemovesExactlyTheExpired(t *testing.T) {
	w := newWorld(t, 2)
	w.f.Init(0)
	cmd := []string{"/bin/sh", "-c", `echo result > "$RESULTS/r.txt"`}
	var ids []string
	for i, keep := range []bool{false, true, false, false} {
		b := w.submit(t, builder.Request{Command: cmd, Keep: keep})
		if fin := w.wait(t, b.ID); fin.State != builder.StateSucceeded {
			t.Fatalf("build %d: %s (%s)", i, fin.State, fin.Error)
		}
		ids = append(ids, b.ID)
	}
	old, kept, mid, fresh := ids[0], ids[1], ids[2], ids[3]
	recs := map[string]builder.Build{}
	for _, id := range ids {
		recs[id], _ = w.b.Get(id)
	}
	// Results belong to the submitter (root here) and the build's group.
	if fi, err := os.Stat(filepath.Join(recs[fresh].ResultDir, "r.txt")); err != nil {
		t.Fatal(err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || int(st.Gid) != recs[fresh].BuildGID {
		t.Fatalf("results belong to %d:%d, want 0:%d", st.Uid, st.Gid, recs[fresh].BuildGID)
	}
	cfg, _ := w.f.M.Config(w.f.Root)
	// The builds' own snapinfo records went with their workdirs, except
	// the kept one's.
	for _, id := range []string{old, mid, fresh} {
		if _, err := os.Stat(cfg.SnapinfoPath(recs[id].UniqueExt)); !os.IsNotExist(err) {
			t.Fatalf("snapinfo of finished build %s: %v", id, err)
		}
	}
	if _, err := os.Stat(cfg.SnapinfoPath(recs[kept].UniqueExt)); err != nil {
		t.Fatalf("snapinfo of the kept workdir: %v", err)
	}

	// Age them on disk as a daemon that ran for days would have: old and
	// kept finished 3 days ago, mid 2 days ago; then a new daemon.
	w.cancel()
	w.b.Wait()
	age := map[string]time.Duration{old: 72 * time.Hour, kept: 72 * time.Hour, mid: 48 * time.Hour}
	for id, d := range age {
		rec := recs[id]
		rec.Finished = rec.Finished.Add(-d)
		rec.Submitted = rec.Submitted.Add(-d)
		data, _ := json.Marshal(rec)
		if err := os.WriteFile(filepath.Join(w.f.StateDir, "builds", id, "build.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.start(t, 2)
	running := w.submit(t, builder.Request{Command: []string{"/bin/sh", "-c", "echo started; sleep 1000"}})
	w.waitStarted(t, running.ID)

	ctx := testguard.Context(t)
	pruned, err := w.b.Prune(ctx, builder.Retention{MaxAge: builder.Duration(60 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	assertPruned(t, pruned, map[string]string{old: "age"})
	assertRemoved(t, w, recs[old])
	// By count: the newest one stays, mid goes, kept stays (its workdir
	// is there), the running one is no finished build.
	pruned, err = w.b.Prune(ctx, builder.Retention{MaxCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	assertPruned(t, pruned, map[string]string{mid: "count"})
	assertRemoved(t, w, recs[mid])
	for _, id := range []string{kept, fresh, running.ID} {
		if _, err := w.b.Get(id); err != nil {
			t.Fatalf("build %s was removed: %v", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(recs[fresh].ResultDir, "r.txt")); err != nil {
		t.Fatalf("the newest build's results: %v", err)
	}
	// Told to, retention takes the kept workdir too; by space, everything
	// finished goes.
	pruned, err = w.b.Prune(ctx, builder.Retention{MaxBytes: 1, Kept: true})
	if err != nil {
		t.Fatal(err)
	}
	assertPruned(t, pruned, map[string]string{kept: "space", fresh: "space"})
	assertRemoved(t, w, recs[kept])
	if _, cs := w.f.M.State().Config(w.f.Root); cs.Workdir(recs[kept].UniqueExt) != nil {
		t.Fatal("the kept workdir is still there")
	}
	if _, err := w.b.Get(running.ID); err != nil {
		t.Fatalf("the running build was removed: %v", err)
	}
	w.b.Cancel(running.ID, 0)
	w.wait(t, running.ID)
}

func assertPruned(t *testing.T, got []builder.Pruned, want map[string]string) {
	t.Helper()
	var g, wnt []string
	for _, p := range got {
		g = append(g, p.ID+":"+p.Why)
	}
	for id, why := range want {
		wnt = append(wnt, id+":"+why)
	}
	sort.Strings(g)
	sort.Strings(wnt)
	if strings.Join(g, " ") != strings.Join(wnt, " ") {
		t.Fatalf("pruned %v, want %v", g, wnt)
	}
}

func assertRemoved(t *testing.T, w *world, rec builder.Build) {
	t.Helper()
	if _, err := w.b.Get(rec.ID); err == nil {
		t.Fatalf("build %s is still listed", rec.ID)
	}
	for _, p := range []string{filepath.Join(w.f.StateDir, "builds", rec.ID), rec.ResultDir, filepath.Dir(rec.ResultDir)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s of pruned build %s is still there (%v)", p, rec.ID, err)
		}
	}
}
