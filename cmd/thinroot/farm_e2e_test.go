package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A farm host from the command line: per-build limits and the
// out-of-memory reason, the usage in a build's record, a shell in a
// cgroup of its own, pruning, and the metrics on TCP.
func TestFarmHostFromTheCLI(t *testing.T) {
	e := newCLI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e.serveArgs = []string{"--pids-max", "512", "--metrics-listen", addr}
	e.serve()

	r := e.x("build", "busybox", "--memory-max", "64M", "--", "/bin/sh", "-c", `awk 'BEGIN { s = "0123456789abcdef"; while (length(s) < 512 * 1024 * 1024) s = s s }'`)
	if r.code == 0 || !strings.Contains(r.err, "failed: out of memory (limit 64 MiB, peak ") {
		t.Fatalf("a memory hog through the CLI: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.err), "\n")
	t.Logf("memory hog: exit %d: %s", r.code, lines[len(lines)-1])
	// Only root may raise the host's limits; root may.
	e.ok("build", "busybox", "--pids-max", "1024", "--cpus", "0.5", "--", "/bin/true")
	var builds []struct {
		ID     string         `json:"id"`
		Limits map[string]any `json:"limits"`
		Usage  map[string]any `json:"usage"`
	}
	if err := json.Unmarshal([]byte(e.ok("builds", "--json")), &builds); err != nil || len(builds) != 2 {
		t.Fatalf("builds --json: %v %d", err, len(builds))
	}
	if builds[0].Limits["pids_max"] != 1024.0 || builds[0].Limits["cpus"] != 0.5 || builds[0].Usage["cpu_seconds"] == nil {
		t.Fatalf("the newest build's record: limits %v usage %v", builds[0].Limits, builds[0].Usage)
	}
	if out := e.ok("builds", builds[0].ID); !strings.Contains(out, "memory_peak: ") || !strings.Contains(out, "pids_peak: ") {
		t.Fatalf("builds ID:\n%s", out)
	}
	// A shell or chroot runs in a cgroup of its own.
	if out := e.ok("chroot", "busybox", "--", "/bin/cat", "/proc/self/cgroup"); !strings.Contains(out, "/"+e.cgroupParent+"/shell-") {
		t.Fatalf("chroot's cgroups:\n%s", out)
	}

	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`thinroot_builds_finished_total{config="busybox",state="failed"} 1`,
		`thinroot_builds_finished_total{config="busybox",state="succeeded"} 1`,
		`thinroot_build_oom_kills_total{config="busybox"} 1`,
		`thinroot_builds_running 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics on TCP lack %q", want)
		}
	}

	r = e.x("builds", "--prune", "--keep", "1")
	if r.code != 0 || !strings.Contains(r.out, builds[1].ID) || strings.Contains(r.out, builds[0].ID) {
		t.Fatalf("builds --prune --keep 1 (want %s pruned): %s", builds[1].ID, r)
	}
	if r := e.x("builds", builds[1].ID); r.code == 0 {
		t.Fatalf("the pruned build is still shown: %s", r)
	}
	if r := e.x("builds", "--keep", "1"); r.code != exitUsage {
		t.Fatalf("--keep without --prune: %s", r)
	}
}
