package fsview_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/probe"
)

// TestPermissions: a user outside the tree's group reads everything and
// changes nothing (EACCES); a member may mkdir, rmdir and write actions.
func TestPermissions(t *testing.T) {
	f := world(t)
	m := mountTree(t, f, nil, 100*time.Millisecond)
	w := filepath.Join(m.snap("postinit"), "mine")
	if err := os.Mkdir(w, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	steps := []probe.Step{
		{Op: "readdir", Path: m.Mnt},
		{Op: "readdir", Path: m.snap("postinit")},
		{Op: "read", Path: filepath.Join(m.pool(), "stats")},
		{Op: "read", Path: filepath.Join(m.pool(), "stats.json")},
		{Op: "read", Path: filepath.Join(m.config(), "current")},
		{Op: "read", Path: filepath.Join(w, ".info")},
		{Op: "mkdir", Path: filepath.Join(m.snap("postinit"), "theirs")},
		{Op: "write", Path: filepath.Join(w, "snapshot"), Data: "theirs\n"},
		{Op: "write", Path: filepath.Join(m.config(), "current"), Data: "postinit\n"},
		{Op: "rmdir", Path: w},
		{Op: "rmdir", Path: m.snap("postinit")},
	}
	got := probe.Run(t, nobody, nobody, []uint32{}, steps)
	want := []string{"ok", "ok", "ok", "ok", "ok", "ok", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES"}
	if !reflect.DeepEqual(got, want) {
		for i, s := range steps {
			t.Logf("outsider %s %s: %s", s.Op, s.Path, got[i])
		}
		t.Fatalf("outsider got %v, want %v", got, want)
	}
	if _, err := os.Stat(w); err != nil {
		t.Fatalf("the outsider's rmdir removed the workdir: %v", err)
	}

	// A member of the group: the same steps work (postinit stays: EPERM
	// for everyone), and the snapshot it made can be removed.
	steps[len(steps)-1] = probe.Step{Op: "rmdir", Path: m.snap("theirs")}
	got = probe.Run(t, nobody, nobody, []uint32{treeGID}, steps)
	want = []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"}
	if !reflect.DeepEqual(got, want) {
		for i, s := range steps {
			t.Logf("member %s %s: %s", s.Op, s.Path, got[i])
		}
		t.Fatalf("member got %v, want %v", got, want)
	}
	if got := m.names(m.snaps()); !reflect.DeepEqual(got, []string{"postinit"}) {
		t.Fatalf("after the member's steps: snapshots %v", got)
	}
	if got := m.names(m.snap("postinit")); !reflect.DeepEqual(got, []string{".info", ".info.json", "theirs"}) {
		t.Fatalf("after the member's steps: postinit has %v", got)
	}
}
