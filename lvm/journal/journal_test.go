package journal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
)

// An intent whose writer died before putting it in place (killed between
// creating its temporary and renaming it) is swept; one whose writer
// still holds it stays. A writer whose fresh temporary is swept before it
// locks it starts over and still records its intent.
func TestSweepsAbandonedTemporaries(t *testing.T) {
	j := New(t.TempDir())
	os.MkdirAll(j.Dir(), 0o755)
	dead := filepath.Join(j.Dir(), ".new-workdir-create-123")
	live := filepath.Join(j.Dir(), ".new-workdir-create-456")
	os.WriteFile(dead, []byte(`{"op":"workdir-create"}`), 0o644)
	os.WriteFile(live, nil, 0o644)
	h, err := lock.TryLock(live, true)
	if err != nil || h == nil {
		t.Fatal(err)
	}
	defer h.Release()
	j.SweepTemps()
	if _, err := os.Stat(dead); err == nil {
		t.Error("an abandoned intent temporary was not swept")
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a temporary its writer holds was swept: %v", err)
	}
	e, err := j.Begin(Intent{Op: Snapshot, Root: "r", Pool: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Done()
	if _, err := os.Stat(e.Path()); err != nil {
		t.Fatalf("intent not in place: %v", err)
	}
}

// An intent is live while its writer holds it and dead once it lets go;
// a dead one can be claimed once, and Done removes it.
func TestLiveDeadClaim(t *testing.T) {
	j := New(t.TempDir())
	spec := backend.Spec{Kind: "lvm2", Options: map[string]string{"volume_group": "vg"}}
	e, err := j.Begin(Intent{Op: WorkdirCreate, Root: "r", Pool: "p", Backend: spec, Volumes: []string{"+mock.r.w"}})
	if err != nil {
		t.Fatal(err)
	}
	list := j.List()
	if len(list) != 1 || !list[0].Live || list[0].Op != WorkdirCreate || list[0].Backend.String() != spec.String() {
		t.Fatalf("list while running: %+v", list)
	}
	if c, err := j.Claim(e.Path()); c != nil || err != nil {
		t.Fatalf("claimed a live intent: %v %v", c, err)
	}
	e.Release()
	list = j.List()
	if len(list) != 1 || list[0].Live {
		t.Fatalf("list after the writer let go: %+v", list)
	}
	c, err := j.Claim(list[0].Path)
	if err != nil || c == nil || c.Volumes[0] != "+mock.r.w" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if again, _ := j.Claim(list[0].Path); again != nil {
		t.Fatal("claimed twice")
	}
	c.Done()
	if list := j.List(); len(list) != 0 {
		t.Fatalf("intent left after Done: %+v", list)
	}
}

// Which way a dead operation goes is its type's, not a flag of its own.
func TestOpDirection(t *testing.T) {
	for op, fwd := range map[Op]bool{Init: false, WorkdirCreate: false, Snapshot: false,
		WorkdirRemove: true, SnapshotRemove: true, Scrub: true} {
		if op.Forward() != fwd {
			t.Errorf("%s: forward %v", op, op.Forward())
		}
	}
	if !Scrub.RemovesPool() || WorkdirRemove.RemovesPool() {
		t.Error("only scrub removes its pool")
	}
}

// Intents written before the backend was a Spec still read.
func TestReadsOldIntents(t *testing.T) {
	var in Intent
	if err := json.Unmarshal([]byte(`{"op":"scrub","root":"r","pool":"p","backend":"lvm2:vg0","forward":true}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.Backend.Kind != "lvm2" || in.Backend.Options["volume_group"] != "vg0" || in.Op != Scrub {
		t.Fatalf("old intent read as %+v", in)
	}
	if err := json.Unmarshal([]byte(`{"op":"init","backend":"file"}`), &in); err != nil || in.Backend.String() != "file" {
		t.Fatalf("old file intent read as %+v, %v", in, err)
	}
}

// Records go back to their old content, or on to their new one.
func TestRecordSet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rec")
	rc := Change(p, "new")
	if err := rc.Set(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("rolling back a record that did not exist left a file")
	}
	if err := rc.Set(true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("forward: %q", b)
	}
	rc = Change(p, "")
	rc.Set(true)
	if _, err := os.Stat(p); err == nil {
		t.Fatal("a record changed to nothing is still there")
	}
	rc.Set(false)
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("back: %q", b)
	}
}

// A sweep may lock a writer's fresh temporary before the writer does
// (it looks abandoned for that instant); the writer then starts over
// with a new one instead of failing. Before, the operation failed with
// "lock intent": a mkdir through the tree answered EIO on a loaded
// machine.
func TestBeginWhileASweepHoldsItsTemporary(t *testing.T) {
	j := New(t.TempDir())
	os.MkdirAll(j.Dir(), 0o755)
	var held []*lock.Held
	beforeLock = func(path string) {
		if len(held) < 3 {
			h, err := lock.TryLock(path, true)
			if err != nil || h == nil {
				t.Fatalf("the sweep could not lock %s: %v", path, err)
			}
			held = append(held, h)
		}
	}
	defer func() { beforeLock = nil }()
	e, err := j.Begin(Intent{Op: WorkdirCreate, Root: "r", Pool: "p"})
	if err != nil {
		t.Fatalf("begin while a sweep holds its temporaries: %v", err)
	}
	defer e.Done()
	if len(held) != 3 {
		t.Fatalf("the writer tried %d temporaries, want 4", len(held)+1)
	}
	for _, h := range held {
		os.Remove(h.Path())
		h.Release()
	}
	if _, err := os.Stat(e.Path()); err != nil {
		t.Fatalf("intent not in place: %v", err)
	}
}
