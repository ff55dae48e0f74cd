package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm"
)

// app is what a running command works with.
type app struct {
	cmd     *command
	g       *globals
	stdout  io.Writer
	stderr  io.Writer
	flags   *pflag.FlagSet
	tail    []string // the arguments after "--", for a command with a tail
	signals *signals
	log     *slog.Logger
	mgr     *lvm.Manager
}

func (a *app) close() {}

func (a *app) logger() *slog.Logger {
	if a.log != nil {
		return a.log
	}
	// Long-running commands log their work; the others print their
	// results and phases, and log only what goes wrong.
	name := a.g.logLevel
	if name == "" {
		name = "warn"
		if a.cmd != nil && (a.cmd.name == "serve" || a.cmd.name == "mount") {
			name = "info"
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(name)); err != nil {
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

// jsonOut tells whether --json was given.
func (a *app) jsonOut() bool { return a.flags != nil && getBool(a.flags, "json") }

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
	m, err := a.newManager(configs, strict)
	if err != nil {
		return nil, err
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

// newManager makes the Manager without recovering or scanning.
func (a *app) newManager(configs []lvm.Config, strict bool) (*lvm.Manager, error) {
	warn, refuse := float64(lvm.DefaultWarnPercent), float64(lvm.DefaultRefusePercent)
	if a.flags != nil && a.flags.Lookup("warn-percent") != nil {
		warn, refuse = getPercent(a.flags, "warn-percent"), getPercent(a.flags, "refuse-percent")
	}
	m, err := lvm.NewManager(lvm.Options{
		StateDir:      a.g.stateDir,
		Basedir:       a.g.basedir,
		WarnPercent:   warn,
		RefusePercent: refuse,
		Log:           a.logger(),
		Discover:      a.discoverSpecs(),
		ReadOnly:      a.readOnlyCommand(),
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
	return m, nil
}

// client is the daemon's API client; its errors say how to reach the
// daemon when it does not answer.
func (a *app) client() *daemonClient {
	sock := getString(a.flags, "socket")
	return &daemonClient{Client: builder.NewClient(sock), sock: sock}
}

type daemonClient struct {
	*builder.Client
	sock string
}

func (c *daemonClient) wrap(err error) error {
	if err == nil {
		return nil
	}
	return daemonErr(c.sock, err)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func printf(w io.Writer, format string, args ...any) { fmt.Fprintf(w, format, args...) }

func joinArgs(a []string) string { return strings.Join(a, " ") }
