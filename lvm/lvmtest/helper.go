package lvmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/lvm"
)

// Some tests need a second OS process doing an operation (two processes
// initializing one config, a process killed half way). The test binary
// runs itself as that process: TestMain calls HelperMain first, which does
// the operation described in the environment and exits.

const helperEnv = "THINROOT_LVMTEST_HELPER"

type helperJob struct {
	Op       string     `json:"op"` // "init", "workdir", "snapshot", "remove-snapshot", "scrub"
	StateDir string     `json:"state_dir"`
	Basedir  string     `json:"basedir"`
	Config   lvm.Config `json:"config"`
	Snapshot string     `json:"snapshot,omitempty"`
	Ext      string     `json:"ext,omitempty"`
	Name     string     `json:"name,omitempty"`
}

// HelperMain runs a helper job if this process was started as one; call
// it from TestMain before m.Run.
func HelperMain(env Env) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	var job helperJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := lvm.NewManager(lvm.Options{StateDir: job.StateDir, Backends: env.Backends(job.StateDir), Basedir: job.Basedir, Log: log})
	if err == nil {
		err = m.AddConfig(job.Config)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	m.Recover(ctx)
	m.Refresh(ctx)
	switch job.Op {
	case "init":
		var did bool
		did, err = m.Init(ctx, job.Config.Root, os.Stderr)
		if err == nil && did {
			fmt.Println("bootstrapped")
		}
	case "workdir":
		_, err = m.CreateWorkdir(ctx, job.Config.Root, job.Snapshot, job.Ext)
	case "snapshot":
		err = m.Snapshot(ctx, job.Config.Root, job.Ext, job.Name)
	case "remove-snapshot":
		err = m.RemoveSnapshot(ctx, job.Config.Root, job.Snapshot)
	case "scrub":
		err = m.Scrub(ctx, job.Config.Root)
	default:
		err = fmt.Errorf("unknown op %q", job.Op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCmd prepares this test binary as a helper process for job,
// optionally armed to crash at a named point.
func (f *Fixture) helperCmd(job helperJob, crashAt string) *exec.Cmd {
	f.T.Helper()
	job.StateDir, job.Basedir = f.StateDir, f.Basedir
	if job.Config.Root == "" {
		job.Config = f.Config
	}
	spec, err := json.Marshal(job)
	if err != nil {
		f.T.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	if crashAt != "" {
		cmd.Env = append(cmd.Env, crashpoint.Env+"="+crashAt)
	}
	return cmd
}

var _ = testing.Verbose
