package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// A crash case runs its operation in another OS process: the test binary
// run again with a Job in its environment, armed to SIGKILL itself at the
// named point. TestMain calls HelperMain first (after sandbox.Main, which
// builds need), which does the job and exits.

const helperEnv = "THINROOT_FAULTS_HELPER"

// Job is what a helper process does.
type Job struct {
	Op       string       `json:"op"`      // an Op kind, or "build"
	Backend  string       `json:"backend"` // lvmtest.Env.Name
	StateDir string       `json:"state_dir"`
	Basedir  string       `json:"basedir"`
	Configs  []lvm.Config `json:"configs"`
	Root     string       `json:"root"`
	Snap     string       `json:"snap,omitempty"`
	Ext      string       `json:"ext,omitempty"`
	Name     string       `json:"name,omitempty"`
	// Build is the request of a "build" job; BuildInfo its config's
	// build settings.
	Build     *builder.Request    `json:"build,omitempty"`
	BuildInfo *builder.ConfigInfo `json:"build_info,omitempty"`
}

// HelperMain runs a helper job if this process was started as one, and
// never returns then. Call it from TestMain, after sandbox.Main, with every
// backend the test binary runs the matrix on.
func HelperMain(envs ...lvmtest.Env) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	var job Job
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	var env *lvmtest.Env
	for i := range envs {
		if envs[i].Name == job.Backend {
			env = &envs[i]
		}
	}
	if env == nil {
		fmt.Fprintf(os.Stderr, "helper: no backend %q in this binary\n", job.Backend)
		os.Exit(3)
	}
	if err := runJob(*env, job); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runJob(env lvmtest.Env, job Job) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := lvm.NewManager(lvm.Options{StateDir: job.StateDir, Backends: env.Backends(job.StateDir), Basedir: job.Basedir, Log: log})
	if err != nil {
		return err
	}
	for _, c := range job.Configs {
		if err := m.AddConfig(c); err != nil {
			return err
		}
	}
	ctx := context.Background()
	// As every thinroot command does when it starts.
	if err := m.Recover(ctx); err != nil {
		log.Warn("recover", "err", err)
	}
	if _, err := m.Refresh(ctx); err != nil {
		log.Warn("refresh", "err", err)
	}
	return Perform(ctx, m, job)
}

// Perform does a job's operation on m (the helper process does it; a
// test does it too, for the next attempt after a crash).
func Perform(ctx context.Context, m *lvm.Manager, job Job) error {
	switch job.Op {
	case "ensure-pool":
		return m.EnsurePool(ctx, job.Root)
	case "init":
		_, err := m.Init(ctx, job.Root, os.Stderr)
		return err
	case "snapshot":
		return m.Snapshot(ctx, job.Root, job.Ext, job.Name)
	case "workdir-create":
		_, err := m.CreateWorkdir(ctx, job.Root, job.Snap, job.Ext)
		return err
	case "workdir-remove":
		return m.RemoveWorkdir(ctx, job.Root, job.Ext)
	case "remove-snapshot":
		return m.RemoveSnapshot(ctx, job.Root, job.Snap)
	case "set-current":
		return m.SetCurrent(ctx, job.Root, job.Ext, job.Snap)
	case "rollback-to":
		return m.RollbackTo(ctx, job.Root, job.Snap)
	case "scrub":
		return m.Scrub(ctx, job.Root)
	case "build":
		return runBuild(ctx, m, job)
	}
	return fmt.Errorf("unknown op %q", job.Op)
}

// runBuild is a one-build daemon: a builder on m, the job's build
// submitted, waited for.
func runBuild(ctx context.Context, m *lvm.Manager, job Job) error {
	if job.Build == nil || job.BuildInfo == nil {
		return fmt.Errorf("build job without a request")
	}
	info := *job.BuildInfo
	b, err := builder.New(ctx, builder.Options{StateDir: job.StateDir, Jobs: 1, Manager: m,
		Resolve: func(string) (builder.ConfigInfo, error) { return info, nil }})
	if err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.Start(bctx)
	rec, err := b.Submit(*job.Build, 0)
	if err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	fin, err := b.WaitFor(wctx, rec.ID)
	if err != nil {
		return err
	}
	if fin.State != builder.StateSucceeded {
		return fmt.Errorf("build %s: %s: %s", fin.ID, fin.State, fin.Error)
	}
	return nil
}

// helperCmd prepares this test binary as a helper for job, armed to crash
// at point ("" for none).
func helperCmd(job Job, point string) (*exec.Cmd, error) {
	spec, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	if point != "" {
		cmd.Env = append(cmd.Env, crashpoint.Env+"="+point)
	}
	cmd.Dir = "/"
	return cmd, nil
}
