package fsview

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/thinroot/thinroot/lvm"
)

// actionModel records the action files' calls and judges names as the
// Manager does.
type actionModel struct {
	*fakeModel
	calls []string
}

func (m *actionModel) SetCurrent(ctx context.Context, root, ext, snap string) error {
	m.calls = append(m.calls, "current "+snap)
	return lvm.ValidateSnapshot(root, snap)
}

func (m *actionModel) Snapshot(ctx context.Context, root, ext, name string) error {
	m.calls = append(m.calls, "snapshot "+name)
	return lvm.ValidateSnapshot(root, name)
}

// FuzzActionWrite writes arbitrary bytes at an arbitrary offset to the two
// action files, through the same handle a FUSE write reaches. A write is
// acted on at most once, only when it is one name and an optional newline
// at offset 0 within the size limit, and only with that name; everything
// else, and any name the model refuses, is EINVAL. The seed corpus is
// testdata/fuzz/FuzzActionWrite.
func FuzzActionWrite(f *testing.F) {
	f.Add([]byte("s1\n"), int64(0))
	f.Add([]byte("s1"), int64(3))
	f.Fuzz(func(t *testing.T, data []byte, off int64) {
		m := &actionModel{fakeModel: &fakeModel{st: sampleState()}}
		tr := New(m, Options{})
		cur := mk(tr, &currentFile{pool: "mockbuild", root: "f41"}, "pools/mockbuild/configs/f41", "current")
		snap := mk(tr, &snapshotFile{pool: "mockbuild", root: "f41", snap: "postinit", ext: "a"},
			"pools/mockbuild/configs/f41/snapshots/postinit/a", "snapshot")
		for _, c := range []struct {
			a actor
			f *file
		}{{cur, &cur.file}, {snap, &snap.file}} {
			a := c.a
			m.calls = nil
			h := &handle{f: c.f, act: a}
			n, errno := h.Write(context.Background(), data, off)
			name := strings.TrimSuffix(string(data), "\n")
			wellFormed := off == 0 && len(data) > 0 && len(data) <= maxAction && name != "" &&
				!strings.ContainsAny(name, " \t\r\n\x00/")
			switch {
			case !wellFormed:
				if errno != syscall.EINVAL || len(m.calls) != 0 {
					t.Fatalf("%s: write %q at %d: errno %v, calls %v; want EINVAL and no action", a.kind(), data, off, errno, m.calls)
				}
			case len(m.calls) != 1 || !strings.HasSuffix(m.calls[0], " "+name):
				t.Fatalf("%s: write %q: calls %v, want one with %q", a.kind(), data, m.calls, name)
			case lvm.ValidateSnapshot("f41", name) != nil:
				if errno != syscall.EINVAL {
					t.Fatalf("%s: a name the model refuses (%q): errno %v, want EINVAL", a.kind(), name, errno)
				}
			case errno != 0 || int(n) != len(data):
				t.Fatalf("%s: a good name %q: n %d errno %v", a.kind(), name, n, errno)
			}
		}
	})
}
