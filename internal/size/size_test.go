package size

import "testing"

func TestParse(t *testing.T) {
	good := map[string]int64{
		"0": 0, "4096": 4096, "8G": 8 << 30, "8g": 8 << 30, "512M": 512 << 20,
		"1.5G": 3 << 29, "2T": 2 << 40, "100k": 100 << 10, "8 GiB": 8 << 30,
		"8GB": 8_000_000_000, "300 MB": 300_000_000, "10b": 10,
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-3G", "G", "eight", "1Q", "99999999999E"} {
		if n, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, n)
		}
	}
}

func TestFormat(t *testing.T) {
	if got := Format(8 << 30); got != "8.0 GiB" {
		t.Errorf("Format(8G) = %q", got)
	}
}
