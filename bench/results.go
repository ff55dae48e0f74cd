package main

import (
	"math"
	"sort"
	"time"
)

// Results is BENCHMARKS.json: everything BENCHMARKS.md shows comes from
// here, and everything here comes from one run.
type Results struct {
	Generated time.Time `json:"generated"`
	Commit    string    `json:"commit"`
	// Seconds is the wall time of the whole run.
	Seconds float64 `json:"seconds"`
	// Complete is false when the run measured only some benchmarks
	// (-only) or stopped half way.
	Complete   bool         `json:"complete"`
	Machine    Machine      `json:"machine"`
	Method     Method       `json:"method"`
	Roots      []rootInfo   `json:"roots,omitempty"`
	Benchmarks []*Benchmark `json:"benchmarks"`
	Targets    []Target     `json:"targets"`
	// LVMCounts is benchmark 5's input, copied from the VM run's file when
	// it was there (see lvmcounts.go).
	LVMCounts *LVMCounts `json:"lvm_counts,omitempty"`
}

// Machine is what the run ran on.
type Machine struct {
	Cores     int               `json:"cores"`
	CPU       string            `json:"cpu"`
	MemoryGiB float64           `json:"memory_gib"`
	Kernel    string            `json:"kernel"`
	OS        string            `json:"os"`
	HostFS    string            `json:"host_fs"`    // filesystem holding the scratch directory
	PoolFS    string            `json:"pool_fs"`    // thinroot's pool and volumes
	AltFS     string            `json:"alt_fs"`     // where the alternatives work
	Tools     map[string]string `json:"tools"`      // versions of the programs measured
	GoVersion string            `json:"go_version"` // of this program
}

// Method is how the figures were taken.
type Method struct {
	Caches      string `json:"caches"`
	Percentiles string `json:"percentiles"`
	Reps        int    `json:"reps"`
	SlowReps    int    `json:"slow_reps"`
	Notes       string `json:"notes"`
}

// rootInfo is one synthetic root and what making it cost.
type rootInfo struct {
	rootStats
	Config        string  `json:"config"`
	TarballBytes  int64   `json:"tarball_bytes"`
	Compression   float64 `json:"compression_ratio"`
	InitSeconds   float64 `json:"thinroot_init_seconds"`
	TarSeconds    float64 `json:"tarball_seconds"`
	SnapshotBytes int64   `json:"snapshot_bytes"` // postinit image's allocated bytes
}

// Benchmark is one of the numbered benchmarks: its headline
// figure and ratios, and every measurement behind them.
type Benchmark struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	What     string   `json:"what"`
	Units    string   `json:"units"`
	P50      float64  `json:"p50"`
	P95      float64  `json:"p95"`
	Ratios   Ratios   `json:"ratios,omitempty"`
	Commands []string `json:"commands,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	// Measurements are the rows of the benchmark's table.
	Measurements []*Measurement `json:"measurements"`
	Error        string         `json:"error,omitempty"`
}

// Ratios are named quotients of figures measured in the same run.
type Ratios map[string]float64

// Measurement is one thing measured n times.
type Measurement struct {
	ID       string  `json:"id"`
	Approach string  `json:"approach"`
	Param    string  `json:"param,omitempty"`
	What     string  `json:"what"`
	Units    string  `json:"units"`
	N        int     `json:"n"`
	P50      float64 `json:"p50"`
	P95      float64 `json:"p95"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Mean     float64 `json:"mean"`
	// Total is set where the sum of the samples is the point (space).
	Total  float64 `json:"total,omitempty"`
	Ratios Ratios  `json:"ratios,omitempty"`
	// Extra are figures shown beside the measurement that are neither
	// its samples nor ratios (a step's share, memory per operation).
	Extra   map[string]float64 `json:"extra,omitempty"`
	Samples []float64          `json:"samples,omitempty"`
}

// Target is one of the targets and how this run did.
type Target struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	// Known is false when the figure was not measured in this run.
	Known bool `json:"known"`
	// Why explains a miss (analysis written with the benchmark, shown
	// only when the target is missed).
	Why string `json:"why,omitempty"`
}

// measure summarizes samples. Percentiles are nearest-rank: p95 of 20
// samples is the 19th smallest.
func measure(id, approach, param, what, units string, samples []float64) *Measurement {
	m := &Measurement{ID: id, Approach: approach, Param: param, What: what, Units: units, N: len(samples)}
	if len(samples) == 0 {
		return m
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	m.P50, m.P95 = rank(s, 50), rank(s, 95)
	m.Min, m.Max = s[0], s[len(s)-1]
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	m.Mean = round(sum/float64(len(s)), 4)
	if len(samples) <= 64 {
		m.Samples = roundAll(samples, 4)
	}
	return m
}

// rank is the nearest-rank p-th percentile of sorted s.
func rank(s []float64, p int) float64 {
	i := int(math.Ceil(float64(p)/100*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, i))]
}

func round(v float64, digits int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	// Significant digits, so microseconds and gigabytes both keep theirs.
	mag := math.Floor(math.Log10(math.Abs(v)))
	f := math.Pow(10, float64(digits-1)-mag)
	return math.Round(v*f) / f
}

func roundAll(vs []float64, digits int) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = round(v, digits)
	}
	return out
}

// ms converts durations to milliseconds.
func ms(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Nanoseconds()) / 1e6
	}
	return out
}

// ratio is a/b rounded, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 4)
}

// against sets on m the ratios name_p50 and name_p95 of other over m
// (how many times m is faster or smaller).
func (m *Measurement) against(name string, other *Measurement) {
	if other == nil || other.N == 0 || m.N == 0 {
		return
	}
	if m.Ratios == nil {
		m.Ratios = Ratios{}
	}
	m.Ratios[name+"_p50"] = ratio(other.P50, m.P50)
	m.Ratios[name+"_p95"] = ratio(other.P95, m.P95)
}

func (b *Benchmark) add(m *Measurement) *Measurement {
	b.Measurements = append(b.Measurements, m)
	return m
}

// Find is find for templates.
func (b *Benchmark) Find(id string) *Measurement { return b.find(id) }

func (b *Benchmark) find(id string) *Measurement {
	for _, m := range b.Measurements {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// headline makes m the benchmark's headline figure.
func (b *Benchmark) headline(m *Measurement) {
	if m == nil {
		return
	}
	b.Units, b.P50, b.P95 = m.Units, m.P50, m.P95
	b.Ratios = m.Ratios
}
