package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/internal/size"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/mockcfg"
)

// globals are flags every command takes.
type globals struct {
	configDir string
	stateDir  string
	basedir   string
	logLevel  string
	logFormat string
	warn      float64
	refuse    float64
}

func newGlobals() *globals {
	return &globals{
		configDir: envOr("THINROOT_CONFIG_DIR", mockcfg.DefaultConfigDir),
		stateDir:  envOr("THINROOT_STATE_DIR", lvm.DefaultStateDir),
		basedir:   envOr("THINROOT_BASEDIR", ""),
		logLevel:  envOr("THINROOT_LOG_LEVEL", "info"),
		logFormat: "text",
		warn:      lvm.DefaultWarnPercent,
		refuse:    lvm.DefaultRefusePercent,
	}
}

// register adds the global flags to fs with the current values as their
// defaults, so flags given before the verb survive the verb's own parse.
func (g *globals) register(fs *pflag.FlagSet) {
	configDirFlag(fs, g)
	fs.StringVar(&g.stateDir, "state-dir", g.stateDir, "thinroot's state directory (file pools, locks, build records) [$THINROOT_STATE_DIR]")
	fs.StringVar(&g.basedir, "basedir", g.basedir, "mock's basedir, overriding the config's (mount points, snapinfo and lock files) [$THINROOT_BASEDIR]")
	fs.StringVar(&g.logLevel, "log-level", g.logLevel, "log level: debug, info, warn, error [$THINROOT_LOG_LEVEL]")
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "log format: text or json")
	fs.Float64Var(&g.warn, "warn-percent", g.warn, "pool usage that draws a warning (new pools)")
	fs.Float64Var(&g.refuse, "refuse-percent", g.refuse, "pool usage above which new volumes are refused (new pools)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// app is what a running command works with.
type app struct {
	g      *globals
	stdout io.Writer
	stderr io.Writer
	flags  *pflag.FlagSet
	log    *slog.Logger
	mgr    *lvm.Manager
}

func (a *app) logger() *slog.Logger {
	if a.log != nil {
		return a.log
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if a.g.logFormat == "json" {
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	} else {
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	}
	return a.log
}

// manager builds the Manager with every backend this host can offer,
// finishes interrupted operations and loads the picture.
func (a *app) manager(ctx context.Context, configs ...lvm.Config) (*lvm.Manager, error) {
	return a.managerFor(ctx, configs, true)
}

// servingManager is manager for long-running commands: a config whose
// backend is not available here is skipped with a warning, not fatal.
func (a *app) servingManager(ctx context.Context, set configSet) (*lvm.Manager, error) {
	return a.managerFor(ctx, set.lvm(), false)
}

func (a *app) managerFor(ctx context.Context, configs []lvm.Config, strict bool) (*lvm.Manager, error) {
	if a.mgr != nil {
		return a.mgr, nil
	}
	m, err := lvm.NewManager(lvm.Options{
		StateDir:      a.g.stateDir,
		Basedir:       a.g.basedir,
		WarnPercent:   a.g.warn,
		RefusePercent: a.g.refuse,
		Log:           a.logger(),
		Discover:      a.discoverSpecs(),
	})
	if err != nil {
		return nil, err
	}
	for _, c := range configs {
		if err := m.AddConfig(c); err != nil {
			if strict {
				return nil, err
			}
			a.logger().Warn("skipping a config", "config", c.Root, "err", err)
		}
	}
	if err := m.Recover(ctx); err != nil {
		a.logger().Warn("recovering interrupted operations", "err", err)
	}
	if _, err := m.Refresh(ctx); err != nil {
		a.logger().Warn("scan", "err", err)
	}
	a.mgr = m
	return m, nil
}

// configFlags define a config on the command line (until a config file
// names it): thinroot's equivalent of mock's config_opts for one root.
func configFlags(fs *pflag.FlagSet) {
	fs.String("backend", file.Kind, "backend of an ad hoc config: file, btrfs or lvm2")
	fs.String("volume-group", "", "volume group of an lvm2 pool (lvm_root_opts.volume_group)")
	fs.String("pool", lvm.DefaultPool, "thin pool name (lvm_root_opts.pool_name)")
	fs.String("size", "8G", "virtual size of the config's volumes, and of a new pool (lvm_root_opts.size)")
	fs.String("pool-size", "", "size of a new pool image, when different from --size")
	fs.String("pool-dir", "", "use this directory as the pool (file: XFS with reflink or btrfs; btrfs: btrfs)")
	fs.String("filesystem", lvm.DefaultFilesystem, "filesystem of the volumes (lvm_root_opts.filesystem)")
	fs.String("mkfs-command", "", "mkfs command (default mkfs.FILESYSTEM)")
	fs.StringArray("mkfs-arg", nil, "argument for mkfs, repeatable (lvm_root_opts.mkfs_args)")
	fs.String("mount-options", "", "mount options of workdirs (lvm_root_opts.mount_options)")
	fs.Bool("no-check-size", false, "only warn above the refuse threshold (check_size = False)")
	fs.String("uniqueext", "", "the config's unique-ext (default head)")
	fs.StringArray("bootstrap", nil, "bootstrap argv word, repeatable (or give the argv after --)")
}

// configFromFlags builds a config for root from the command's flags.
func (a *app) configFromFlags(root string, bootstrap []string) (lvm.Config, error) {
	fs := a.flags
	get := func(n string) string {
		if fs.Lookup(n) == nil {
			return ""
		}
		v, _ := fs.GetString(n)
		return v
	}
	backend := get("backend")
	if backend == "" {
		backend = file.Kind
	}
	c := lvm.Config{Root: root, Backend: backend, BackendOptions: backendOptions(get("volume-group")), Pool: get("pool"), Filesystem: get("filesystem"),
		MkfsCommand: get("mkfs-command"), MountOptions: get("mount-options"), PoolDirectory: get("pool-dir"),
		UniqueExt: get("uniqueext"), Basedir: a.g.basedir, CheckSize: true}
	if c.Basedir == "" {
		c.Basedir = lvm.DefaultBasedir
	}
	if fs.Lookup("mkfs-arg") != nil {
		c.MkfsArgs, _ = fs.GetStringArray("mkfs-arg")
	}
	if fs.Lookup("no-check-size") != nil {
		no, _ := fs.GetBool("no-check-size")
		c.CheckSize = !no
	}
	var err error
	if s := get("size"); s != "" {
		if c.Size, err = size.Parse(s); err != nil {
			return c, err
		}
	}
	if s := get("pool-size"); s != "" {
		if c.PoolSize, err = size.Parse(s); err != nil {
			return c, err
		}
	}
	c.Bootstrap = bootstrap
	if fs.Lookup("bootstrap") != nil {
		if b, _ := fs.GetStringArray("bootstrap"); len(b) > 0 {
			c.Bootstrap = b
		}
	}
	if err := c.Normalize(); err != nil {
		return c, err
	}
	return c, nil
}

// configManager resolves the CONFIG argument and returns the Manager with
// that config registered.
func (a *app) configManager(ctx context.Context, name string, bootstrap []string) (*lvm.Manager, *lvm.Config, error) {
	lc, err := a.resolveConfig(name, bootstrap)
	if err != nil {
		return nil, nil, err
	}
	m, err := a.manager(ctx, lc.vol)
	if err != nil {
		return nil, nil, err
	}
	rc, err := m.Config(lc.vol.Root)
	return m, rc, err
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func oneArg(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", usageErr("want exactly one %s, got %d arguments", what, len(args))
	}
	return args[0], nil
}

func printf(w io.Writer, format string, args ...any) { fmt.Fprintf(w, format, args...) }

func joinArgs(a []string) string { return strings.Join(a, " ") }
