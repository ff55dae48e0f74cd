package cgroup

import "testing"

// The tests that need the guard (TestMain) are in package cgroup_test.

func TestParseKey(t *testing.T) {
	s := "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	if n := parseKey(s, "oom_kill"); n != 3 {
		t.Fatalf("oom_kill = %d", n)
	}
	if n := parseKey("usage_usec 1500\nuser_usec 1000\n", "usage_usec"); n != 1500 {
		t.Fatalf("usage_usec = %d", n)
	}
	if n := parseKey("", "max"); n != 0 {
		t.Fatalf("empty: %d", n)
	}
}

func TestLimitsCheckAndOver(t *testing.T) {
	for _, l := range []Limits{{MemoryMax: -1}, {MemoryMax: 1 << 20}, {PidsMax: -2}, {CPUs: -1}, {CPUs: 0.001}} {
		if l.Check() == nil {
			t.Errorf("%+v was accepted", l)
		}
	}
	got := Limits{MemoryMax: 1 << 30, PidsMax: 10}.Over(Limits{PidsMax: 20, CPUs: 2})
	if got != (Limits{MemoryMax: 1 << 30, PidsMax: 20, CPUs: 2}) {
		t.Fatalf("Over: %+v", got)
	}
}
