package mock

import (
	"errors"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/lvm/backend"
)

func TestMockNames(t *testing.T) {
	if got := ConfID("fedora-41-x86_64"); got != "mock.fedora-41-x86_64" {
		t.Errorf("ConfID = %q", got)
	}
	if got := SnapshotVolume("fedora-41-x86_64", "postinit"); got != "mock.fedora-41-x86_64.postinit" {
		t.Errorf("SnapshotVolume = %q", got)
	}
	if got := WorkdirVolume("fedora-41-x86_64", "head"); got != "+mock.fedora-41-x86_64.head" {
		t.Errorf("WorkdirVolume = %q", got)
	}
}

func TestValidateNames(t *testing.T) {
	long := strings.Repeat("a", 120)
	cases := []struct {
		kind, name string
		reason     string // "" = valid
	}{
		{"ext", "head", ""},
		{"ext", "build-1234_x", ""},
		{"ext", "a+b", ""},
		{"ext", "", "empty"},
		{"ext", "a/b", "contains '/'"},
		{"ext", "..", "not allowed"},
		{"ext", ".hidden", "not allowed"},
		{"ext", "-rf", "starts with '-'"},
		{"ext", "sp ace", "not allowed"},
		{"ext", "nul\x00", "contains NUL"},
		{"ext", "line\nbreak", "line break"},
		{"ext", "\xff\xfe", "not valid UTF-8"},
		{"ext", "ünï", "not allowed"},
		{"ext", "dot.ted", "not allowed"},
		{"ext", long, "too long"},
		{"ext", "x_tmeta", "LVM reserves"},
		{"snap", "postinit", ""},
		{"snap", "my_rimage", "LVM reserves"},
		{"snap", "a/../b", "contains '/'"},
		{"root", "fedora-41-x86_64", ""},
		{"root", "opensuse-leap-15.5-x86_64", ""},
		{"root", "rhel+epel-8-x86_64", ""},
		{"root", ".", "starts with '.'"},
		{"root", "a/b", "contains '/'"},
		{"root", strings.Repeat("r", 130), "too long"},
		{"pool", "mockbuild", ""},
		{"pool", "snapshot1", "reserves names starting with"},
		{"pool", "pvmove", "reserves names starting with"},
		{"pool", "p_tdata", "LVM reserves"},
	}
	for _, c := range cases {
		var err error
		switch c.kind {
		case "ext":
			err = ValidateExt("fedora-41-x86_64", c.name)
		case "snap":
			err = ValidateSnapshot("fedora-41-x86_64", c.name)
		case "root":
			err = ValidateRoot(c.name)
		case "pool":
			err = ValidatePool(c.name)
		}
		if c.reason == "" {
			if err != nil {
				t.Errorf("%s %q: unexpected error %v", c.kind, c.name, err)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) || !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("%s %q: got %v, want a NameError", c.kind, c.name, err)
			continue
		}
		if !strings.Contains(ne.Reason, c.reason) {
			t.Errorf("%s %q: reason %q, want it to say %q", c.kind, c.name, ne.Reason, c.reason)
		}
	}
}

func TestOwnershipRule(t *testing.T) {
	cases := []struct {
		root, lv string
		ours     bool
	}{
		{"f41", "mock.f41.postinit", true},
		{"f41", "+mock.f41.head", true},
		{"f41", "mock.f41.", false},
		{"f41", "mock.f410.postinit", false},
		{"f41", "mock.f4.postinit", false},
		{"f41", "other", false},
		{"f41", "mockbuild", false},
		{"f41", "mock.f41", false},
	}
	for _, c := range cases {
		if got := IsOurs(c.root, c.lv); got != c.ours {
			t.Errorf("IsOurs(%q, %q) = %v", c.root, c.lv, got)
		}
	}
}

func TestParseVolume(t *testing.T) {
	known := []string{"opensuse-leap-15.5-x86_64", "opensuse-leap-15"}
	cases := []struct {
		lv   string
		want VolumeName
		ok   bool
	}{
		{"mock.opensuse-leap-15.5-x86_64.postinit", VolumeName{"opensuse-leap-15.5-x86_64", "postinit", false}, true},
		{"+mock.opensuse-leap-15.5-x86_64.head", VolumeName{"opensuse-leap-15.5-x86_64", "head", true}, true},
		{"mock.fedora-41-x86_64.s1", VolumeName{"fedora-41-x86_64", "s1", false}, true},
		{"+mock.fedora-41-x86_64.b7", VolumeName{"fedora-41-x86_64", "b7", true}, true},
		{"mockbuild", VolumeName{}, false},
		{"mock.nodot", VolumeName{}, false},
		{"mock.trailing.", VolumeName{}, false},
		{"lvol0", VolumeName{}, false},
	}
	for _, c := range cases {
		got, ok := ParseVolume(c.lv, known)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v, %v", c.lv, got, ok, c.want, c.ok)
		}
	}
}

func TestPaths(t *testing.T) {
	d := Dirs{Basedir: "/var/lib/mock", Root: "f41"}
	want := map[string]string{
		d.ChrootDir("head"):   "/var/lib/mock/f41/root",
		d.ChrootDir("b1"):     "/var/lib/mock/f41-b1/root",
		d.SnapinfoPath("b1"):  "/var/lib/mock/.snapinfo-mock.f41.b1",
		d.InitLockPath():      "/var/lib/mock/.lvm-mock.f41.lock",
		d.PoolLockPath():      "/var/lib/mock/.lvm-pool-mock.f41.lock",
		d.WorkdirDir("other"): "/var/lib/mock/f41-other",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
}
