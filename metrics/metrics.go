// Package metrics is the daemon's Prometheus metrics: builds by config
// and state, build, bootstrap and workdir-creation durations, the queue,
// pools and volumes, builddep snapshots and lvm2 commands. It uses the
// official client library and knows nothing of the packages it measures:
// the builder and the daemon call its methods (every one is a no-op on a
// nil *Metrics) and hand it functions that read their state at scrape
// time.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BuildCount is the number of builds of one config in one state.
type BuildCount struct {
	Config, State string
	N             int
}

// Builds is the builder's state at a scrape.
type Builds struct {
	Counts  []BuildCount
	Queued  int
	Running int
	Jobs    int
}

// Pool is one pool's figures at a scrape.
type Pool struct {
	Name, Backend   string
	SizeBytes       int64
	UsedBytes       int64
	DataPercent     float64
	MetadataPercent float64
	Configs         int
	ThinVolumes     int
	Snapshots       int
	Workdirs        int
	Spares          int
	Up              bool // scanned without error at the last refresh
}

// Sources read the state behind the gauges; either may be nil.
type Sources struct {
	Builds func() Builds
	Pools  func() []Pool
}

// Metrics holds the daemon's metrics.
type Metrics struct {
	reg          *prometheus.Registry
	finished     *prometheus.CounterVec
	buildSecs    *prometheus.HistogramVec
	bootSecs     *prometheus.HistogramVec
	workdirSecs  prometheus.Histogram
	builddep     *prometheus.CounterVec
	lvmCommands  *prometheus.CounterVec
	lvmErrors    *prometheus.CounterVec
	lvmSecs      *prometheus.HistogramVec
	cpuSecs      *prometheus.CounterVec
	oomKills     *prometheus.CounterVec
	memPeakBytes *prometheus.HistogramVec
}

// New makes the metrics and registers them, with the Go runtime's and
// the process's, in a registry of their own.
func New(src Sources) *Metrics {
	durations := []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thinroot_builds_finished_total", Help: "Builds that ended, by config and final state.",
		}, []string{"config", "state"}),
		buildSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "thinroot_build_duration_seconds", Help: "Time from a build's start to its end, by config and final state.",
			Buckets: durations,
		}, []string{"config", "state"}),
		bootSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "thinroot_bootstrap_duration_seconds", Help: "Time a config's bootstrap took, by config.",
			Buckets: durations,
		}, []string{"config"}),
		workdirSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "thinroot_workdir_create_duration_seconds", Help: "Time to create a build's workdir (clone and mount).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		builddep: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thinroot_builddep_snapshot_lookups_total", Help: "Rounds of BuildRequires by whether a builddep snapshot was cloned (hit) or the package manager ran (miss).",
		}, []string{"config", "result"}),
		lvmCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thinroot_lvm_commands_total", Help: "lvm2 commands run, by command.",
		}, []string{"command"}),
		lvmErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thinroot_lvm_command_errors_total", Help: "lvm2 commands that failed, by command.",
		}, []string{"command"}),
		lvmSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "thinroot_lvm_command_duration_seconds", Help: "Time lvm2 commands took, by command.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		cpuSecs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thinroot_build_cpu_seconds_total", Help: "CPU time used by finished builds (their cgroups), by config.",
		}, []string{"config"}),
		oomKills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thinroot_build_oom_kills_total", Help: "Processes of builds killed at their memory limit, by config.",
		}, []string{"config"}),
		memPeakBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "thinroot_build_memory_peak_bytes", Help: "Peak memory of finished builds (their cgroups), by config.",
			Buckets: prometheus.ExponentialBuckets(16<<20, 2, 10),
		}, []string{"config"}),
	}
	m.reg.MustRegister(m.finished, m.buildSecs, m.bootSecs, m.workdirSecs, m.builddep,
		m.lvmCommands, m.lvmErrors, m.lvmSecs, m.cpuSecs, m.oomKills, m.memPeakBytes,
		&state{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is where the metrics are registered (for tests and for other
// collectors of the daemon).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Usage is what a finished build's cgroup used.
type Usage struct {
	CPUSeconds float64
	MemoryPeak int64
	OOMKills   int64
}

// BuildFinished counts a build that ended in state after took; usage is
// nil without a cgroup.
func (m *Metrics) BuildFinished(config, state string, took time.Duration, usage *Usage) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(config, state).Inc()
	if took > 0 {
		m.buildSecs.WithLabelValues(config, state).Observe(took.Seconds())
	}
	if usage != nil {
		m.cpuSecs.WithLabelValues(config).Add(usage.CPUSeconds)
		m.oomKills.WithLabelValues(config).Add(float64(usage.OOMKills))
		m.memPeakBytes.WithLabelValues(config).Observe(float64(usage.MemoryPeak))
	}
}

// Bootstrap records a config's bootstrap.
func (m *Metrics) Bootstrap(config string, took time.Duration) {
	if m == nil {
		return
	}
	m.bootSecs.WithLabelValues(config).Observe(took.Seconds())
}

// WorkdirCreated records how long a build's workdir took to make.
func (m *Metrics) WorkdirCreated(took time.Duration) {
	if m == nil {
		return
	}
	m.workdirSecs.Observe(took.Seconds())
}

// Builddep counts one round of BuildRequires.
func (m *Metrics) Builddep(config string, hit bool) {
	if m == nil {
		return
	}
	r := "miss"
	if hit {
		r = "hit"
	}
	m.builddep.WithLabelValues(config, r).Inc()
}

// LVMCommand counts one lvm2 command (lvm2.Observe).
func (m *Metrics) LVMCommand(command string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.lvmCommands.WithLabelValues(command).Inc()
	m.lvmSecs.WithLabelValues(command).Observe(took.Seconds())
	if err != nil {
		m.lvmErrors.WithLabelValues(command).Inc()
	}
}

// state reads the gauges from their sources at each scrape.
type state struct{ src Sources }

var (
	descBuilds  = prometheus.NewDesc("thinroot_builds", "Builds the daemon has a record of, by config and state.", []string{"config", "state"}, nil)
	descQueued  = prometheus.NewDesc("thinroot_builds_queued", "Builds waiting for a free slot.", nil, nil)
	descRunning = prometheus.NewDesc("thinroot_builds_running", "Builds running now.", nil, nil)
	descJobs    = prometheus.NewDesc("thinroot_build_slots", "Builds the daemon runs at once at most (--jobs).", nil, nil)
	descPoolUp  = prometheus.NewDesc("thinroot_pool_up", "1 when the pool was scanned without error at the last refresh.", []string{"pool", "backend"}, nil)
	descSize    = prometheus.NewDesc("thinroot_pool_size_bytes", "Size of the pool's data.", []string{"pool"}, nil)
	descUsed    = prometheus.NewDesc("thinroot_pool_used_bytes", "Data used in the pool.", []string{"pool"}, nil)
	descData    = prometheus.NewDesc("thinroot_pool_data_percent", "Data use of the pool, in percent.", []string{"pool"}, nil)
	descMeta    = prometheus.NewDesc("thinroot_pool_metadata_percent", "Metadata use of the pool, in percent.", []string{"pool"}, nil)
	descVolumes = prometheus.NewDesc("thinroot_pool_volumes", "Volumes in the pool, by kind (thin: all thin volumes but warm spares; snapshot; workdir; spare).", []string{"pool", "kind"}, nil)
	descConfigs = prometheus.NewDesc("thinroot_pool_configs", "Configs with volumes in the pool.", []string{"pool"}, nil)
)

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuilds, descQueued, descRunning, descJobs, descPoolUp, descSize, descUsed, descData, descMeta, descVolumes, descConfigs} {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s.src.Builds != nil {
		b := s.src.Builds()
		for _, c := range b.Counts {
			gauge(descBuilds, float64(c.N), c.Config, c.State)
		}
		gauge(descQueued, float64(b.Queued))
		gauge(descRunning, float64(b.Running))
		gauge(descJobs, float64(b.Jobs))
	}
	if s.src.Pools != nil {
		for _, p := range s.src.Pools() {
			up := 0.0
			if p.Up {
				up = 1
			}
			gauge(descPoolUp, up, p.Name, p.Backend)
			gauge(descSize, float64(p.SizeBytes), p.Name)
			gauge(descUsed, float64(p.UsedBytes), p.Name)
			gauge(descData, p.DataPercent, p.Name)
			gauge(descMeta, p.MetadataPercent, p.Name)
			gauge(descVolumes, float64(p.ThinVolumes), p.Name, "thin")
			gauge(descVolumes, float64(p.Snapshots), p.Name, "snapshot")
			gauge(descVolumes, float64(p.Workdirs), p.Name, "workdir")
			gauge(descVolumes, float64(p.Spares), p.Name, "spare")
			gauge(descConfigs, float64(p.Configs), p.Name)
		}
	}
}
