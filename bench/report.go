package main

import (
	"bytes"
	_ "embed"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed report.md.tmpl
var reportTemplate string

// chartName is the chart's file, beside BENCHMARKS.md.
const chartName = "ready-time.svg"

// rpmChartName is benchmark 6's chart: the phases of an RPM build per
// approach.
const rpmChartName = "rpm-phases.svg"

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", ".", "directory holding BENCHMARKS.json; BENCHMARKS.md and the chart are written there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var res Results
	if err := readJSON(filepath.Join(*dir, "BENCHMARKS.json"), &res); err != nil {
		return err
	}
	// Targets are a function of the figures; recomputing them picks up
	// changes to the analysis without a new run.
	res.Targets = targets(&res)
	return report(&res, *dir)
}

// report writes BENCHMARKS.md and the chart from res.
func report(res *Results, dir string) error {
	chart := ""
	if b := res.bench("ready"); b != nil && len(b.Measurements) > 0 {
		if err := drawChart(res, b, filepath.Join(dir, chartName)); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		chart = chartName
	}
	rpmChart := ""
	if b := res.bench("rpm"); b != nil && len(b.Measurements) > 0 {
		if err := drawRPMChart(res, b, filepath.Join(dir, rpmChartName)); err != nil {
			return fmt.Errorf("RPM chart: %w", err)
		}
		rpmChart = rpmChartName
	}
	t, err := template.New("report").Funcs(template.FuncMap{
		"num":      num,
		"int":      func(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) },
		"x":        func(v float64) string { return num(v) + "x" },
		"mib":      func(v int64) string { return num(float64(v) / (1 << 20)) },
		"join":     strings.Join,
		"size":     sizeLabel,
		"min":      func(s float64) string { return fmt.Sprintf("%.1f", s/60) },
		"date":     func(t time.Time) string { return t.Format("2006-01-02 15:04 UTC") },
		"cmds":     commandsText,
		"mockOps":  func() []mockOp { return mockOps },
		"mockSrc":  func() string { return mockSource },
		"ratios":   ratiosText,
		"extra":    extraText,
		"lvmFor":   lvmFor,
		"divide":   func(a, b int) float64 { return float64(a) / float64(b) },
		"vs":       vsThinroot,
		"notKnown": func(ts []Target) bool { return anyTarget(ts, func(t Target) bool { return !t.Known }) },
		"missed":   func(ts []Target) bool { return anyTarget(ts, func(t Target) bool { return t.Known && !t.Met }) },
	}).Parse(reportTemplate)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	data := struct {
		*Results
		Chart    string
		RPMChart string
	}{res, chart, rpmChart}
	if err := t.Execute(&buf, data); err != nil {
		return err
	}
	// The template's conditional sections leave runs of blank lines.
	md := regexp.MustCompile(`\n([ \t]*\n){2,}`).ReplaceAll(buf.Bytes(), []byte("\n\n"))
	out := filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(out+".tmp", md, 0o644); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// bench finds a benchmark by id (templates call it).
func (r *Results) bench(id string) *Benchmark {
	for _, b := range r.Benchmarks {
		if b.ID == id {
			return b
		}
	}
	return nil
}

// Bench is bench for templates.
func (r *Results) Bench(id string) *Benchmark { return r.bench(id) }

// num prints a figure with three significant digits (whole numbers from
// 1000 up), which is about what the noise allows.
func num(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(round(v, 3), 'g', 3, 64)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ratiosText lists a measurement's ratios, a p50 and p95 pair as one:
// "name p50 / p95".
func ratiosText(r Ratios) string {
	var parts []string
	for _, k := range sortedKeys(r) {
		if base, ok := strings.CutSuffix(k, "_p95"); ok {
			if _, pair := r[base+"_p50"]; pair {
				continue
			}
		}
		if base, ok := strings.CutSuffix(k, "_p50"); ok {
			if p95, pair := r[base+"_p95"]; pair {
				parts = append(parts, fmt.Sprintf("%s %s / %s", strings.ReplaceAll(base, "_", " "), num(r[k]), num(p95)))
				continue
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s", strings.ReplaceAll(k, "_", " "), num(r[k])))
	}
	return strings.Join(parts, "; ")
}

func extraText(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		v := num(m[k])
		if m[k] == math.Trunc(m[k]) {
			v = strconv.FormatFloat(m[k], 'f', 0, 64) // a count
		}
		parts = append(parts, fmt.Sprintf("%s %s", strings.ReplaceAll(k, "_", " "), v))
	}
	return strings.Join(parts, "; ")
}

// vsThinroot shows how an alternative's figure compares with thinroot's
// in the same row group (same Param): "p50 ratio / p95 ratio", or the
// ratio of totals with total set; "" on thinroot's own row.
func vsThinroot(b *Benchmark, m *Measurement, total bool) string {
	if m.Approach == "thinroot" {
		return ""
	}
	for _, t := range b.Measurements {
		if t.Approach != "thinroot" || t.Param != m.Param || t.Ratios == nil {
			continue
		}
		if total {
			if v, ok := t.Ratios[m.Approach+"_over_thinroot_total"]; ok {
				return num(v) + "x"
			}
			return ""
		}
		p50, ok50 := t.Ratios[m.Approach+"_over_thinroot_p50"]
		p95, ok95 := t.Ratios[m.Approach+"_over_thinroot_p95"]
		if ok50 && ok95 {
			return num(p50) + "x / " + num(p95) + "x"
		}
	}
	return ""
}

// lvmFor returns the VM's count for an operation, or nil.
func lvmFor(c *LVMCounts, op string) *LVMOp {
	if c == nil {
		return nil
	}
	if o, ok := c.Operations[op]; ok {
		return &o
	}
	return nil
}

func anyTarget(ts []Target, f func(Target) bool) bool {
	for _, t := range ts {
		if f(t) {
			return true
		}
	}
	return false
}

// drawChart plots buildroot-ready time against root size, one line per
// approach: p50 with a bar up to p95, both axes logarithmic.
func drawChart(res *Results, b *Benchmark, out string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		return fmt.Errorf("gnuplot is not installed (apt-get install gnuplot-nox): %w", err)
	}
	tmp, err := os.MkdirTemp("", "bench-chart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var plots []string
	colors := map[string]string{"thinroot": "#1b7837", "thinroot-spare": "#00441b", "thinroot-btrfs": "#7fbc41", "untar": "#b2182b", "cp": "#ef8a62", "overlay": "#2166ac"}
	for _, a := range readyApproaches {
		var rows []string
		for _, m := range b.Measurements {
			if m.Approach != a.id || m.N == 0 {
				continue
			}
			mb, _ := strconv.Atoi(m.ID[strings.LastIndexByte(m.ID, '/')+1:])
			rows = append(rows, fmt.Sprintf("%d %g %g %g", mb, m.P50, m.P50, m.P95))
		}
		if len(rows) == 0 {
			continue
		}
		data := filepath.Join(tmp, a.id+".dat")
		if err := os.WriteFile(data, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		plots = append(plots, fmt.Sprintf("'%s' using 1:2:3:4 with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '%s' title '%s'",
			data, colors[a.id], strings.ReplaceAll(a.label, "'", "")))
	}
	var xt []string
	for _, r := range res.Roots {
		xt = append(xt, fmt.Sprintf("'%s' %d", sizeLabel(r.MB), r.MB))
	}
	script := fmt.Sprintf(`set terminal svg size 780,500 dynamic font 'sans,12' background '#ffffff'
set output '%s'
set title 'Fresh buildroot, ready to chroot (p50; bar up to p95) - %s'
set xlabel 'root size'
set ylabel 'milliseconds (log scale)'
set logscale xy
set xrange [30:1800]
set xtics (%s)
set grid ytics mytics xtics lc rgb '#dddddd'
set key outside below center horizontal
plot %s
`, out, res.Generated.Format("2006-01-02"), strings.Join(xt, ", "), strings.Join(plots, ", \\\n  "))
	return gnuplot(script, out, tmp)
}

// drawRPMChart draws benchmark 6 as stacked bars: for each source package
// and approach, the p50 of each phase.
func drawRPMChart(res *Results, b *Benchmark, out string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		return fmt.Errorf("gnuplot is not installed (apt-get install gnuplot-nox): %w", err)
	}
	tmp, err := os.MkdirTemp("", "bench-chart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	short := map[string]string{"thinroot-cold": "thinroot cold", "thinroot-warm": "thinroot warm",
		"thinroot-hit": "thinroot builddep hit", "untar": "untar + dnf", "overlay": "overlayfs + dnf"}
	var rows []string
	for _, s := range rpmSRPMs {
		for _, a := range rpmApproaches {
			m := b.find("rpm/" + a.id + "/" + s.id)
			if m == nil || m.N == 0 {
				continue
			}
			row := fmt.Sprintf("\"%s: %s\"", s.id, short[a.id])
			for _, p := range rpmPhases {
				row += fmt.Sprintf(" %g", m.Extra[p.id+"_p50_s"])
			}
			rows = append(rows, row)
		}
		rows = append(rows, "\"\" 0 0 0 0")
	}
	data := filepath.Join(tmp, "rpm.dat")
	if err := os.WriteFile(data, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	colors := []string{"#4d9221", "#c51b7d", "#2166ac", "#999999"}
	var plots []string
	for i, p := range rpmPhases {
		using := fmt.Sprintf("%d:xtic(1)", i+2)
		if i == 0 {
			using = "2:xtic(1)"
		}
		plots = append(plots, fmt.Sprintf("'%s' using %s lc rgb '%s' title '%s'", data, using, colors[i], p.label))
	}
	script := fmt.Sprintf(`set terminal svg size 900,520 dynamic font 'sans,11' background '#ffffff'
set output '%s'
set title 'RPM rebuild, phases per approach (p50 of each phase) - %s'
set ylabel 'seconds'
set style data histograms
set style histogram rowstacked
set style fill solid 0.9 border -1
set boxwidth 0.75
set xtics rotate by -40 left
set grid ytics lc rgb '#dddddd'
set key outside below center horizontal
set bmargin 9
plot %s
`, out, res.Generated.Format("2006-01-02"), strings.Join(plots, ", \\\n  "))
	return gnuplot(script, out, tmp)
}

// gnuplot runs script, which writes the SVG out. gnuplot names its
// temporary data files (under tmp) in the SVG; they are cut out so the
// file stays the same from run to run apart from the figures.
func gnuplot(script, out, tmp string) error {
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(script)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, b)
	}
	svg, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	svg = bytes.ReplaceAll(svg, []byte(tmp+"/"), nil)
	return os.WriteFile(out, svg, 0o644)
}
