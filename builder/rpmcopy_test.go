package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/rpmroot"
)

// The daemon copies a submitter's sources only as far as the submitter
// may read them: by the permission bits of what it opened, never through
// a symbolic link (links are copied as links).
func TestCopyTreeAsReader(t *testing.T) {
	const reader = 4242 // not the owner of anything here
	uid, gid := os.Getuid(), os.Getgid()
	base := probe.PublicDir(t)
	src := filepath.Join(base, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.tar"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.patch"), []byte("b"), 0o644)
	os.Symlink("/etc/shadow", filepath.Join(src, "link"))
	dst := filepath.Join(t.TempDir(), "SOURCES")
	if err := copyTreeAs(src, dst, reader, uid, gid); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "b.patch")); string(b) != "b" {
		t.Errorf("sub/b.patch: %q", b)
	}
	if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "/etc/shadow" {
		t.Errorf("the link was not copied as a link: %q %v", target, err)
	}
	// A file the reader may not read stops the copy.
	os.WriteFile(filepath.Join(src, "secret"), []byte("s"), 0o600)
	if err := copyTreeAs(src, t.TempDir(), reader, uid, gid); err == nil || !strings.Contains(err.Error(), "may not read") {
		t.Errorf("an unreadable file was copied: %v", err)
	}
	os.Remove(filepath.Join(src, "secret"))
	// So does a directory it may not enter.
	os.Chmod(filepath.Join(src, "sub"), 0o700)
	if err := copyTreeAs(src, t.TempDir(), reader, uid, gid); err == nil {
		t.Error("an unreadable directory was copied")
	}
	os.Chmod(filepath.Join(src, "sub"), 0o755)
	// A single file through copyFileAs: a link at the end is refused.
	if err := copyFileAs(filepath.Join(src, "link"), filepath.Join(t.TempDir(), "x"), reader, uid, gid); err == nil {
		t.Error("copyFileAs followed a symbolic link")
	}
}

// Submission refuses what a non-root submitter cannot read, and RPM
// requests that make no sense.
func TestCheckRPMRequest(t *testing.T) {
	const owner = 4242
	dir := probe.PublicDir(t)
	srpm := filepath.Join(dir, "x-1-1.src.rpm")
	os.WriteFile(srpm, []byte("x"), 0o644)
	hidden := filepath.Join(dir, "hidden")
	os.Mkdir(hidden, 0o700)
	hiddenSRPM := filepath.Join(hidden, "y-1-1.src.rpm")
	os.WriteFile(hiddenSRPM, []byte("y"), 0o644)
	for _, c := range []struct {
		req Request
		ok  bool
	}{
		{Request{RPMRequest: RPMRequest{SRPM: srpm}}, true},
		{Request{RPMRequest: RPMRequest{SRPM: srpm, Defines: []string{"a b"}}}, true},
		{Request{RPMRequest: RPMRequest{SRPM: hiddenSRPM}}, false},
		{Request{RPMRequest: RPMRequest{SRPM: "relative.src.rpm"}}, false},
		{Request{RPMRequest: RPMRequest{SRPM: srpm, Spec: srpm}}, false},
		{Request{RPMRequest: RPMRequest{SRPM: srpm, Sources: dir}}, false},
		{Request{RPMRequest: RPMRequest{SRPM: srpm}, Command: []string{"true"}}, false},
		{Request{RPMRequest: RPMRequest{SRPM: srpm}, Source: dir}, false},
		{Request{RPMRequest: RPMRequest{SRPM: srpm, Target: "x86_64; rm -rf /"}}, false},
		{Request{RPMRequest: RPMRequest{Spec: srpm, Sources: hidden}}, false},
	} {
		err := checkRPMRequest(&c.req, owner)
		if (err == nil) != c.ok {
			t.Errorf("%+v: %v, want ok=%v", c.req.RPMRequest, err, c.ok)
		}
	}
	if _, err := rpmroot.BuildMacros([]string{"a b"}, nil, nil); err != nil {
		t.Fatal(err)
	}
}
