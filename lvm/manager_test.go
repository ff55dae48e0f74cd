package lvm

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/lvm/backend"
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
	rep := func(data, meta float64, health string) *backend.PoolReport {
		return &backend.PoolReport{Name: "p", DataPercent: data, MetadataPercent: meta, Health: health, WarnPercent: 75, RefusePercent: 90}
	}
	cases := []struct {
		name   string
		c      *Config
		r      *backend.PoolReport
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
	low := &backend.PoolReport{Name: "p", DataPercent: 30, WarnPercent: 10, RefusePercent: 20}
	if err := m.checkSpace(strict, low); err == nil {
		t.Error("pool's own refuse threshold ignored")
	}
}

func TestStatsStatus(t *testing.T) {
	v := &view{warn: 75, refuse: 90}
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
		p := poolView{name: "p", kind: "fake", report: &backend.PoolReport{Name: "p", SizeBytes: 100, UsedBytes: 10,
			DataPercent: c.data, MetadataPercent: c.meta, Health: c.health, WarnPercent: 75, RefusePercent: 90}}
		v.fillStats(&s, p)
		if s.Status != c.want {
			t.Errorf("%v/%v/%q: status %q, want %q", c.data, c.meta, c.health, s.Status, c.want)
		}
	}
}
