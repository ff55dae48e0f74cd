package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// A crash case runs its operation in another OS process through
// lvmtest's helper protocol: the test binary run again with a Job in its
// environment, armed to SIGKILL itself at the named point. The fault
// suite adds one op to the protocol's, "build": a one-build daemon.

// Job is what a helper process does.
type Job = lvmtest.Job

// buildJob is the Extra of a "build" job.
type buildJob struct {
	Request builder.Request    `json:"request"`
	Info    builder.ConfigInfo `json:"info"`
}

// HelperMain runs a helper job if this process was started as one, and
// never returns then. Call it from TestMain, after sandbox.Main, with every
// backend the test binary runs the matrix on.
func HelperMain(envs ...lvmtest.Env) {
	lvmtest.HelperMain(envs, map[string]lvmtest.Op{"build": runBuild})
}

// withBuild makes job a build of req.
func withBuild(job Job, req builder.Request, info builder.ConfigInfo) Job {
	job.Op = "build"
	job.Extra, _ = json.Marshal(buildJob{Request: req, Info: info})
	return job
}

// runBuild is a one-build daemon: a builder on m, the job's build
// submitted, waited for.
func runBuild(ctx context.Context, m *lvm.Manager, job Job) error {
	var bj buildJob
	if err := json.Unmarshal(job.Extra, &bj); err != nil {
		return fmt.Errorf("build job without a request: %w", err)
	}
	b, err := builder.New(ctx, builder.Options{StateDir: job.StateDir, Jobs: 1, Manager: m,
		Resolve: func(string) (builder.ConfigInfo, error) { return bj.Info, nil }})
	if err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.Start(bctx)
	rec, err := b.Submit(bj.Request, 0)
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
