package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvm2"
	"github.com/thinroot/thinroot/metrics"
)

// Default places under the runtime directory.
const (
	DefaultRunDir = "/run/thinroot"
	DefaultSocket = DefaultRunDir + "/thinroot.sock"
	DefaultMount  = DefaultRunDir + "/tree"
)

var cmdServe = &command{
	name: "serve", group: "daemon",
	summary: "run the daemon: the tree mounted, builds run N at a time, the API on a unix socket",
	help: "The tree is mounted at --mount, builds run up to --jobs at a time, and the HTTP/JSON API (thinroot-api(7)) " +
		"listens on --socket (mode 0666, owned by root and the tree's group; callers are told apart by their credentials). At start it finishes what a killed " +
		"process left half done and mounts every workdir. SIGTERM stops running builds and unmounts the tree.",
	uses: useTree | useConfigs | useAdHoc | useThresholds,
	flags: func(fs *pflag.FlagSet) {
		fs.String("mount", DefaultMount, "where to mount the tree")
		fs.String("socket", envOr("THINROOT_SOCKET", DefaultSocket), "the API's unix socket [$THINROOT_SOCKET]")
		fs.VarP(&countValue{min: 1, def: "the number of CPUs"}, "jobs", "j", "builds running at once, 1 or more (default: the number of CPUs)")
		limitFlags("each build", ", unless its config or request sets one")(fs)
		fs.String("cgroup-parent", envOr("THINROOT_CGROUP_PARENT", "thinroot"), "the cgroup, under the daemon's own, that holds the builds' cgroups [$THINROOT_CGROUP_PARENT]")
		retentionFlags(fs)
		fs.String("metrics-listen", "", "also serve /metrics (Prometheus) on this TCP address: :9464, 127.0.0.1:9464 (it is always on the socket)")
	},
	run: runServe,
}

// runServe starts the daemon. It is long because start-up is one
// sequence, each step needing the one before (mount point, configs,
// Manager, reconcile, builder, API, tree) and undone in reverse at the end.
func runServe(ctx context.Context, a *app, args []string) error {
	fl := a.flags
	mp := getString(fl, "mount")
	sock := getString(fl, "socket")
	jobs := getCount(fl, "jobs")
	ts, err := a.treeSetup(mp)
	if err != nil {
		return err
	}
	if sock, err = filepath.Abs(sock); err != nil {
		return err
	}
	// The daemon's children (bootstraps) never start inside a mount.
	if err := os.Chdir("/"); err != nil {
		return err
	}
	// A predecessor killed with SIGKILL left its tree's mount point dead:
	// every look at it, MkdirAll's too, fails. Detach it first, as
	// mounting does.
	var sfs unix.Statfs_t
	if err := unix.Statfs(ts.mp, &sfs); deadMount(err) {
		if err := detachStale(a.logger(), ts.mp); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(ts.mp, 0o755); err != nil {
		return err
	}
	configs, err := a.loadConfigs(ctx)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	log := a.logger()
	m, err := a.servingManager(ctx, configs)
	if err != nil {
		return err
	}
	// Finish what a killed predecessor left half done and mount every
	// workdir, so each one listed can be entered.
	if err := m.Reconcile(ctx); err != nil {
		log.Warn("reconcile at start", "err", err)
	}
	limits := getLimits(fl)
	cg, err := cgroup.Open(getString(fl, "cgroup-parent"))
	switch {
	case err != nil && !limits.IsZero():
		return fmt.Errorf("--memory-max, --pids-max and --cpus need cgroups: %w", err)
	case err != nil:
		log.Warn("builds run without cgroups: no limits, no usage in their records", "err", err)
		cg = nil
	default:
		log.Info("builds run in cgroups", "version", cg.Version(), "limits", limits)
	}
	var b *builder.Builder
	mt := metrics.New(metrics.Sources{
		Builds: func() metrics.Builds { return b.MetricsState() },
		Pools:  func() []metrics.Pool { return poolMetrics(m.State()) },
	})
	lvm2.Observe = mt.LVMCommand
	bctx, stopBuilds := context.WithCancel(context.Background())
	b, err = builder.New(bctx, builder.Options{
		StateDir: a.g.stateDir, Jobs: jobs, Manager: m, Log: log,
		Resolve: configs.buildInfo, Limits: limits, Cgroups: cg, Retention: getRetention(fl),
		Metrics: mt,
	})
	if err != nil {
		stopBuilds()
		return err
	}
	if addr := getString(fl, "metrics-listen"); addr != "" {
		stop, err := serveMetrics(addr, mt.Handler(), log)
		if err != nil {
			stopBuilds()
			b.Shutdown()
			return err
		}
		defer stop()
	}
	b.Start(bctx)
	apiCtx, stopAPI := context.WithCancel(context.Background())
	srv := &builder.Server{B: b, GID: int(ts.gid), Log: log, Metrics: mt.Handler(), Volumes: a.volumeRunner(int(ts.gid), configs.serves),
		Stats: func() any {
			out := []lvm.Stats{}
			for _, p := range m.State().Pools {
				out = append(out, fsview.PoolStats(p.Stats))
			}
			return out
		},
		Configs: func() any { return configsJSON(m.State()) }}
	apiErr := make(chan error, 1)
	go func() { apiErr <- srv.Serve(apiCtx, sock) }()
	t, err := a.mountTree(ts, m, b)
	if err != nil {
		stopAPI()
		stopBuilds()
		b.Shutdown()
		return err
	}
	log.Info("serving", "mount", ts.mp, "socket", sock, "jobs", jobs)
	waitCtx, cancelWait := context.WithCancel(context.Background())
	go func() {
		if err := <-apiErr; err != nil {
			log.Error("API server stopped", "err", err)
			apiErr <- err
			cancelWait()
		}
	}()
	err = t.waitAndUnmount(waitCtx, sigs)
	stopAPI()
	stopBuilds()
	b.Shutdown()
	if cg != nil {
		// Empty once every build has ended; left when another daemon
		// still runs builds in it.
		cg.Remove()
	}
	log.Info("stopped")
	select {
	case aerr := <-apiErr:
		if aerr != nil {
			return fmt.Errorf("API: %w", aerr)
		}
	default:
	}
	return err
}

// poolMetrics are the figures of the pools for the metrics.
func poolMetrics(st *lvm.State) []metrics.Pool {
	var out []metrics.Pool
	for _, p := range st.Pools {
		s := p.Stats
		out = append(out, metrics.Pool{Name: p.Name, Backend: p.Backend, SizeBytes: s.SizeBytes, UsedBytes: s.UsedBytes,
			DataPercent: s.DataPercent, MetadataPercent: s.MetadataPercent, Configs: s.Configs,
			ThinVolumes: s.ThinVolumes, Snapshots: s.Snapshots, Workdirs: s.Workdirs, Spares: s.Spares, Up: p.Err == ""})
	}
	return out
}

// serveMetrics serves /metrics on a TCP address until stop is called.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
