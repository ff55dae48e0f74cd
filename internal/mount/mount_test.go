package mount

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseLine(t *testing.T) {
	e, ok := parseLine(`36 35 7:3 / /var/lib/mock/a\040b/root rw,noatime shared:1 - ext4 /dev/loop3 rw,discard`)
	if !ok {
		t.Fatal("not parsed")
	}
	if e.Mountpoint != "/var/lib/mock/a b/root" || e.FSType != "ext4" || e.Source != "/dev/loop3" || e.Major != 7 || e.Minor != 3 {
		t.Fatalf("%+v", e)
	}
	if _, ok := parseLine("garbage"); ok {
		t.Fatal("garbage parsed")
	}
}

func TestParseOptions(t *testing.T) {
	flags, data := ParseOptions("noatime,discard,ro,nosuid,commit=60,defaults")
	if flags != unix.MS_NOATIME|unix.MS_RDONLY|unix.MS_NOSUID || data != "discard,commit=60" {
		t.Fatalf("flags %#x data %q", flags, data)
	}
	flags, data = ParseOptions("ro,rw")
	if flags != 0 || data != "" {
		t.Fatalf("rw after ro: flags %#x data %q", flags, data)
	}
}
