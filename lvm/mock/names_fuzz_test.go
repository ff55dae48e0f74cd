package mock

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNames: whatever a config root and a snapshot or unique-ext name are,
// an accepted pair is safe everywhere thinroot puts it: a path component
// under basedir that does not leave it, an LV name LVM accepts, and a
// volume name that parses back into the same pair, with or without the
// root known. A refused one is a NameError with a reason. The seed corpus
// is testdata/fuzz/FuzzNames; go test -fuzz FuzzNames ./lvm/mock/.
func FuzzNames(f *testing.F) {
	f.Add("fedora-41-x86_64", "postinit")
	f.Add("rhel+epel-8.10-x86_64", "b-mqx1a2b3")
	f.Fuzz(func(t *testing.T, root, leaf string) {
		check := func(kind string, err error) bool {
			if err == nil {
				return true
			}
			ne, ok := err.(*NameError)
			if !ok || ne.Reason == "" || ne.Kind != kind {
				t.Fatalf("%s %q: refusal without a reason: %#v", kind, leaf, err)
			}
			return false
		}
		if !check("config", ValidateRoot(root)) {
			return
		}
		safeComponent(t, "config", root)
		snapOK := check("snapshot", ValidateSnapshot(root, leaf))
		extOK := check("unique-ext", ValidateExt(root, leaf))
		if snapOK != extOK {
			// A workdir's LV name has one byte more (the head mark), so a
			// snapshot name may fit where the same unique-ext does not;
			// nothing else may tell them apart.
			if !snapOK || len(WorkdirVolume(root, leaf)) != maxLVName+1 {
				t.Fatalf("%q is a valid snapshot name %v but a valid unique-ext %v", leaf, snapOK, extOK)
			}
			return
		}
		if !snapOK {
			return
		}
		safeComponent(t, "leaf", leaf)
		if strings.Contains(leaf, ".") {
			t.Fatalf("accepted %q with a dot", leaf)
		}
		snap, work := SnapshotVolume(root, leaf), WorkdirVolume(root, leaf)
		if len(snap) > maxLVName || len(work) > maxLVName {
			t.Fatalf("accepted names make LV names of %d and %d bytes", len(snap), len(work))
		}
		for _, known := range [][]string{{root}, nil, {root, root + "." + leaf}} {
			if vn, ok := ParseVolume(snap, known); !ok || vn != (VolumeName{Root: root, Name: leaf}) {
				t.Fatalf("ParseVolume(%q, %q) = %+v %v", snap, known, vn, ok)
			}
			if vn, ok := ParseVolume(work, known); !ok || vn != (VolumeName{Root: root, Name: leaf, Workdir: true}) {
				t.Fatalf("ParseVolume(%q, %q) = %+v %v", work, known, vn, ok)
			}
		}
		if !IsOurs(root, snap) || !IsOurs(root, work) {
			t.Fatalf("%q and %q are not %s's", snap, work, root)
		}
		d := Dirs{Basedir: "/var/lib/mock", Root: root}
		for _, p := range []string{d.ChrootDir(leaf), d.SnapinfoPath(leaf), d.InitLockPath(), d.PoolLockPath()} {
			if filepath.Clean(p) != p || !strings.HasPrefix(p, "/var/lib/mock/") {
				t.Fatalf("path %q leaves the basedir", p)
			}
		}
	})
}

// safeComponent: a name that is one harmless path component.
func safeComponent(t *testing.T, kind, s string) {
	t.Helper()
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00\n\r") || !utf8.ValidString(s) ||
		s[0] == '-' || s[0] == '.' || filepath.Base(s) != s {
		t.Fatalf("accepted %s name %q", kind, s)
	}
}

// FuzzParseVolume: any LV name, ours or anyone's, parses without a panic, and
// what parses puts back together into the same name.
func FuzzParseVolume(f *testing.F) {
	f.Add("+mock.fedora-41-x86_64.head", "fedora-41-x86_64")
	f.Add("mock.a.b.c", "a.b")
	f.Fuzz(func(t *testing.T, lv, known string) {
		for _, roots := range [][]string{nil, {known}} {
			vn, ok := ParseVolume(lv, roots)
			if !ok {
				continue
			}
			back := SnapshotVolume(vn.Root, vn.Name)
			if vn.Workdir {
				back = WorkdirVolume(vn.Root, vn.Name)
			}
			if back != lv || vn.Root == "" || vn.Name == "" {
				t.Fatalf("ParseVolume(%q, %q) = %+v, which makes %q", lv, roots, vn, back)
			}
			if !IsOurs(vn.Root, lv) {
				t.Fatalf("%q parses as %s's but is not", lv, vn.Root)
			}
		}
	})
}
