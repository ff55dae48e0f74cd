package builder_test

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/metrics"
)

// The daemon's /metrics after builds: promtool finds it clean, and the
// counters, histograms and gauges moved with the builds.
func TestMetricsMoveWithBuilds(t *testing.T) {
	w := &world{}
	w0 := newWorld(t, 2)
	w.f, w.info, w.src, w.cg = w0.f, w0.info, w0.src, w0.cg
	var b *builder.Builder
	mt := metrics.New(metrics.Sources{
		Builds: func() metrics.Builds { return b.MetricsState() },
		Pools: func() []metrics.Pool {
			var out []metrics.Pool
			for _, p := range w.f.M.State().Pools {
				out = append(out, metrics.Pool{Name: p.Name, Backend: p.Backend, SizeBytes: p.Stats.SizeBytes,
					DataPercent: p.Stats.DataPercent, MetadataPercent: p.Stats.MetadataPercent,
					ThinVolumes: p.Stats.ThinVolumes, Snapshots: p.Stats.Snapshots, Workdirs: p.Stats.Workdirs, Up: p.Err == ""})
			}
			return out
		},
	})
	w.metrics = mt
	w.start(t, 2)
	b = w.b
	srv := &builder.Server{B: w.b, Metrics: mt.Handler()}
	scrape := func() string {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	before := scrape()
	ok := w.submit(t, builder.Request{Source: w.src})
	bad := w.submit(t, builder.Request{Command: []string{"/bin/sh", "-c", "exit 3"}})
	w.wait(t, ok.ID)
	w.wait(t, bad.ID)
	after := scrape()
	root := w.f.Root
	for _, c := range []struct {
		name   string
		before float64
		after  float64
	}{
		{`thinroot_builds_finished_total{config="` + root + `",state="succeeded"}`, 0, 1},
		{`thinroot_builds_finished_total{config="` + root + `",state="failed"}`, 0, 1},
		{`thinroot_build_duration_seconds_count{config="` + root + `",state="succeeded"}`, 0, 1},
		{`thinroot_bootstrap_duration_seconds_count{config="` + root + `"}`, 0, 1},
		{`thinroot_workdir_create_duration_seconds_count`, 0, 2},
		{`thinroot_builds{config="` + root + `",state="succeeded"}`, 0, 1},
		{`thinroot_builds_running`, 0, 0},
		{`thinroot_builds_queued`, 0, 0},
	} {
		if got := value(before, c.name); got != c.before {
			t.Errorf("before the builds, %s = %v, want %v", c.name, got, c.before)
		}
		if got := value(after, c.name); got != c.after {
			t.Errorf("after the builds, %s = %v, want %v", c.name, got, c.after)
		}
	}
	if w.cg != nil && value(after, `thinroot_build_cpu_seconds_total{config="`+root+`"}`) <= 0 {
		t.Errorf("no CPU time counted:\n%s", grep(after, "cpu_seconds"))
	}
	if !regexp.MustCompile(`thinroot_pool_size_bytes\{pool="[^"]+"\} [1-9]`).MatchString(after) ||
		!strings.Contains(after, "thinroot_pool_data_percent{") || !strings.Contains(after, `kind="snapshot"`) {
		t.Errorf("no pool figures:\n%s", grep(after, "thinroot_pool"))
	}
	t.Logf("a sample of /metrics:\n%s", grep(after, "thinroot_"))

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is missing: make deps installs it (Debian package prometheus)")
		}
		t.Skip("promtool is missing (Debian package prometheus; make deps)")
	}
	f := filepath.Join(t.TempDir(), "metrics.txt")
	os.WriteFile(f, []byte(after), 0o644)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin, _ = os.Open(f)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// value is a sample's value in Prometheus's text format (0 when absent).
func value(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func grep(text, sub string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, sub) && !strings.HasPrefix(line, "#") && !strings.Contains(line, "_bucket{") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
