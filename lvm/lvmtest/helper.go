package lvmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"github.com/thinroot/thinroot/internal/crashpoint"
	"github.com/thinroot/thinroot/lvm"
)

// Some tests need a second OS process doing an operation (two processes
// initializing one config, a process killed half way, a daemon killed in
// the middle of a build). The test binary runs itself as that process:
// TestMain calls HelperMain first, which does the Job described in the
// environment and exits. This is the one helper protocol of the project:
// the contract suite, the tree's and builder's tests and the fault suite
// all use it, the fault suite adding its build job through HelperMain's
// ops.

const helperEnv = "THINROOT_HELPER_JOB"

// Job is what a helper process does.
type Job struct {
	Op       string       `json:"op"`      // a Perform op, or one of HelperMain's ops
	Backend  string       `json:"backend"` // Env.Name
	StateDir string       `json:"state_dir"`
	Basedir  string       `json:"basedir"`
	Configs  []lvm.Config `json:"configs"`
	Root     string       `json:"root"`
	Snap     string       `json:"snap,omitempty"`
	Ext      string       `json:"ext,omitempty"`
	Name     string       `json:"name,omitempty"`
	// Extra carries what an op of another package needs (a build's
	// request).
	Extra json.RawMessage `json:"extra,omitempty"`
}

// Op does a job's operation on a Manager the helper made.
type Op func(ctx context.Context, m *lvm.Manager, job Job) error

// HelperMain runs a helper job if this process was started as one, and
// never returns then. Call it from TestMain (after sandbox.Main, which
// builds need) with every env the test binary uses and the ops it adds
// to Perform's.
func HelperMain(envs []Env, ops map[string]Op) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	var job Job
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	var env *Env
	for i := range envs {
		if envs[i].Name == job.Backend {
			env = &envs[i]
		}
	}
	if env == nil {
		fmt.Fprintf(os.Stderr, "helper: no backend %q in this binary\n", job.Backend)
		os.Exit(3)
	}
	out, err := runJob(*env, job, ops)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	if out != "" {
		fmt.Println(out)
	}
	os.Exit(0)
}

func runJob(env Env, job Job, ops map[string]Op) (string, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := lvm.NewManager(env.ManagerOptions(job.StateDir, job.Basedir, log))
	if err != nil {
		return "", err
	}
	for _, c := range job.Configs {
		if err := m.AddConfig(c); err != nil {
			return "", err
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
	if op, ok := ops[job.Op]; ok {
		return "", op(ctx, m, job)
	}
	if job.Op == "init" {
		did, err := m.Init(ctx, job.Root, os.Stderr)
		if err == nil && did {
			return "bootstrapped", nil
		}
		return "", err
	}
	return "", Perform(ctx, m, job)
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
	case "spare-make", "spare-take", "spare-remove":
		return performSpare(ctx, m, job)
	case "spare-leave":
		// A keeper that ends without stopping (a helper process only).
		if err := m.StartSpares(ctx, lvm.SpareOptions{}); err != nil {
			return err
		}
		return m.MakeSpare(ctx, job.Root, job.Snap)
	}
	return fmt.Errorf("unknown op %q", job.Op)
}

// HelperCmd prepares this test binary as a helper process for job,
// armed to crash at point ("" for none). It runs in "/", never in a
// mount of the test's.
func HelperCmd(job Job, point string) (*exec.Cmd, error) {
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

// helperCmd is HelperCmd for a job on the fixture's directories and
// config (unless the job names its own).
func (f *Fixture) helperCmd(job Job, crashAt string) *exec.Cmd {
	f.T.Helper()
	job.Backend, job.StateDir, job.Basedir = f.Env.Name, f.StateDir, f.Basedir
	if len(job.Configs) == 0 {
		job.Configs = []lvm.Config{f.Config}
	}
	if job.Root == "" {
		job.Root = job.Configs[0].Root
	}
	cmd, err := HelperCmd(job, crashAt)
	if err != nil {
		f.T.Fatal(err)
	}
	return cmd
}

// performSpare does the warm-spare jobs, each as a keeper of spares from
// start to end: spare-make makes one spare of job.Snap (and, like
// spare-remove, removes it as the keeper stops); spare-take makes one and
// hands it over as workdir job.Ext.
func performSpare(ctx context.Context, m *lvm.Manager, job Job) error {
	if err := m.StartSpares(ctx, lvm.SpareOptions{}); err != nil {
		return err
	}
	defer m.StopSpares(ctx)
	if err := m.MakeSpare(ctx, job.Root, job.Snap); err != nil {
		return err
	}
	if job.Op != "spare-take" {
		return nil
	}
	if _, err := m.CreateWorkdir(ctx, job.Root, job.Snap, job.Ext); err != nil {
		return err
	}
	if m.SparesTaken() != 1 {
		return fmt.Errorf("workdir %s was cloned, not handed over from a spare", job.Ext)
	}
	return nil
}
