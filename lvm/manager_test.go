package lvm

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func quietManager(t *testing.T) *Manager {
	t.Helper()
	m, err := NewManager(Options{StateDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckSpaceThresholds(t *testing.T) {
	m := quietManager(t)
	strict := &Config{Root: "r", CheckSize: true}
	lax := &Config{Root: "r", CheckSize: false}
	rep := func(data, meta float64, health string) *PoolReport {
		return &PoolReport{Name: "p", DataPercent: data, MetadataPercent: meta, Health: health, WarnPercent: 75, RefusePercent: 90}
	}
	cases := []struct {
		name   string
		c      *Config
		r      *PoolReport
		refuse bool
	}{
		{"empty", strict, rep(0, 0, ""), false},
		{"warn only", strict, rep(80, 10, ""), false},
		{"at refuse", strict, rep(90, 0, ""), false},
		{"over refuse", strict, rep(90.5, 0, ""), true},
		{"metadata over refuse", strict, rep(10, 95, ""), true},
		{"check_size off", lax, rep(95, 0, ""), false},
		{"out of space ignores check_size", lax, rep(50, 0, "out of data space"), true},
		{"no report", strict, nil, false},
	}
	for _, c := range cases {
		err := m.checkSpace(c.c, c.r)
		if c.refuse != (err != nil) {
			t.Errorf("%s: got %v, refuse=%v", c.name, err, c.refuse)
			continue
		}
		if err != nil {
			var pf *PoolFullError
			if !errors.As(err, &pf) || !errors.Is(err, ErrPoolFull) || pf.Pool != "p" {
				t.Errorf("%s: not a PoolFullError naming the pool: %v", c.name, err)
			}
			if !strings.Contains(err.Error(), "p ") {
				t.Errorf("%s: message does not name the pool: %v", c.name, err)
			}
		}
	}
	// Pool-specific thresholds win over the manager's.
	low := &PoolReport{Name: "p", DataPercent: 30, WarnPercent: 10, RefusePercent: 20}
	if err := m.checkSpace(strict, low); err == nil {
		t.Error("pool's own refuse threshold ignored")
	}
}

func TestStatsStatus(t *testing.T) {
	m := quietManager(t)
	cases := []struct {
		data, meta float64
		health     string
		want       string
	}{
		{10, 10, "", StatusOK},
		{75, 0, "", StatusWarn},
		{0, 80, "", StatusWarn},
		{90, 0, "", StatusFull},
		{20, 20, "metadata read-only", StatusFull},
	}
	for _, c := range cases {
		var s Stats
		p := &poolEntry{name: "p", backend: fakeKind{}, report: &PoolReport{Name: "p", SizeBytes: 100, UsedBytes: 10,
			DataPercent: c.data, MetadataPercent: c.meta, Health: c.health, WarnPercent: 75, RefusePercent: 90}}
		m.fillStats(&s, p)
		if s.Status != c.want {
			t.Errorf("%v/%v/%q: status %q, want %q", c.data, c.meta, c.health, s.Status, c.want)
		}
	}
}

// fakeKind is only a Kind for fillStats; nothing else is called.
type fakeKind struct{ Backend }

func (fakeKind) Kind() string { return "fake" }

func TestStatsText(t *testing.T) {
	s := Stats{Backend: "file", Pool: "p", SizeBytes: 100, UsedBytes: 40, FreeBytes: 60, DataPercent: 40,
		WarnPercent: 75, RefusePercent: 90, Status: StatusOK}
	txt := s.Text()
	for _, k := range []string{"backend", "pool", "size_bytes", "used_bytes", "free_bytes", "data_percent",
		"metadata_percent", "thin_volumes", "configs", "snapshots", "workdirs", "warn_percent", "refuse_percent", "status", "updated"} {
		if !strings.Contains(txt, "\n"+k+": ") && !strings.HasPrefix(txt, k+": ") {
			t.Errorf("stats text lacks %q:\n%s", k, txt)
		}
	}
	if !strings.Contains(string(s.JSON()), `"data_percent": 40`) {
		t.Errorf("stats json: %s", s.JSON())
	}
}

// mock writes the snapinfo record as the bare LV name and reads it back
// with rstrip(); both directions must match it.
func TestSnapinfoFormat(t *testing.T) {
	dir := t.TempDir()
	c := &Config{Root: "f41", Basedir: dir}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := writeSnapinfo(c, "head", "mock.f41.postinit"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".snapinfo-mock.f41.head"))
	if err != nil || string(b) != "mock.f41.postinit" {
		t.Fatalf("record %q, %v; want the bare LV name", b, err)
	}
	os.WriteFile(filepath.Join(dir, ".snapinfo-mock.f41.b2"), []byte("mock.f41.s1 \n"), 0o644)
	if got, _ := readSnapinfo(c, "b2"); got != "mock.f41.s1" {
		t.Fatalf("read %q", got)
	}
	if got, err := readSnapinfo(c, "none"); got != "" || err != nil {
		t.Fatalf("missing record: %q, %v", got, err)
	}
	exts := snapinfoExts(c)
	if strings.Join(exts, ",") != "b2,head" {
		t.Fatalf("exts %v", exts)
	}
}
