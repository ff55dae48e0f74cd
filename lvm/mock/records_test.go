package mock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mock writes the snapinfo record as the bare LV name and reads it back
// with rstrip(); both directions must match it.
func TestSnapinfoFormat(t *testing.T) {
	dir := t.TempDir()
	d := Dirs{Root: "f41", Basedir: dir}
	if err := d.WriteSnapinfo("head", "mock.f41.postinit"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".snapinfo-mock.f41.head"))
	if err != nil || string(b) != "mock.f41.postinit" {
		t.Fatalf("record %q, %v; want the bare LV name", b, err)
	}
	os.WriteFile(filepath.Join(dir, ".snapinfo-mock.f41.b2"), []byte("mock.f41.s1 \n"), 0o644)
	if got, _ := d.ReadSnapinfo("b2"); got != "mock.f41.s1" {
		t.Fatalf("read %q", got)
	}
	if got, err := d.ReadSnapinfo("none"); got != "" || err != nil {
		t.Fatalf("missing record: %q, %v", got, err)
	}
	exts := d.SnapinfoExts()
	if strings.Join(exts, ",") != "b2,head" {
		t.Fatalf("exts %v", exts)
	}
}
