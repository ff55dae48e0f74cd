package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/builder"
)

var argID = arg{name: "BUILD-ID", kind: argBuild}

var cmdBuild = &command{
	name: "build", group: "builds", args: []arg{argCfg}, tail: "CMD ARGS...",
	summary: "run a build in a fresh workdir of CONFIG through the daemon, streaming its log",
	help: "The log goes to standard output, the phases (waiting for the init lock, bootstrapping, creating the workdir, " +
		"building, collecting) to standard error. The build runs in a fresh workdir cloned from --snapshot (default: the " +
		"config's current snapshot), as an unprivileged user in new namespaces, with --source read-only at " +
		builder.SourceDir + " and the result directory at " + builder.ResultsDir + ". The command is CMD, else the config's " +
		"build command. thinroot build exits with the build's status (thinroot help exit-codes). Ctrl-C stops following; " +
		"the build goes on.",
	mock: "mock -r CONFIG --rebuild (with --uniqueext, --rollback-to, --enable-network)",
	uses: useConfig | useDaemon,
	flags: func(fs *pflag.FlagSet) {
		fs.String("source", "", "directory bind-mounted read-only at "+builder.SourceDir)
		fs.String("snapshot", "", "the snapshot to clone (default: the config's current one)")
		fs.String("uniqueext", "", "unique-ext of the build's workdir (default: b-<build id>)")
		fs.Bool("keep", false, "keep the workdir afterwards (it stays in the tree)")
		fs.Bool("network", false, "let the build use the network (mock's --enable-network)")
		fs.Var(&durationValue{allowZero: "no limit"}, "timeout", "stop the build after this long: 90s, 30m, 2h (0: no limit); it then exits 11")
		fs.Bool("detach", false, "print the build id and return without waiting (then: thinroot logs -f, thinroot wait)")
		rpmBuildFlags(fs)
		limitFlags("the build", "; only root may raise the config's")(fs)
	},
	run: runBuild,
}

var cmdBuilds = &command{
	name: "builds", group: "builds", args: []arg{{name: "BUILD-ID", kind: argBuild, optional: true, repeat: true}},
	summary: "list the daemon's builds, newest first, or show some; --prune removes old ones",
	uses:    useDaemon | useJSON,
	flags:   pruneFlags,
	run:     runBuilds,
}

var cmdLogs = &command{
	name: "logs", group: "builds", args: []arg{argID},
	summary: "print a build's log; with -f, follow it until the build ends",
	uses:    useDaemon,
	flags: func(fs *pflag.FlagSet) {
		fs.BoolP("follow", "f", false, "keep printing the log as it grows, until the build ends")
	},
	run: runLogs,
}

var cmdWait = &command{
	name: "wait", group: "builds", args: []arg{argID},
	summary: "wait for a build to end and exit with its status",
	help:    "The status is the one thinroot build would exit with (thinroot help exit-codes).",
	uses:    useDaemon | useJSON,
	run:     runWait,
}

var cmdCancel = &command{
	name: "cancel", group: "builds", args: []arg{argID},
	summary: "stop a queued or running build",
	help:    "Every process of the build is killed and its workdir removed.",
	uses:    useDaemon,
	run:     runCancel,
}

func runBuild(ctx context.Context, a *app, args []string) error {
	req := builder.Request{Config: args[0], Command: a.tail}
	fl := a.flags
	if src := getString(fl, "source"); src != "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return usageErr("--source %s: not a directory", src)
		}
		req.Source = abs
	}
	if err := rpmRequest(fl, &req); err != nil {
		return err
	}
	req.Snapshot = getString(fl, "snapshot")
	req.UniqueExt = getString(fl, "uniqueext")
	req.Keep = getBool(fl, "keep")
	req.Network = getBool(fl, "network")
	req.Timeout = builder.Duration(getDuration(fl, "timeout"))
	req.Limits = getLimits(fl)

	c := a.client()
	b, err := c.Submit(ctx, req)
	if err != nil {
		return c.wrap(err)
	}
	if getBool(fl, "detach") {
		fmt.Fprintln(a.stdout, b.ID)
		return nil
	}
	tty := isTerminal(a.stderr)
	p := newProgress(a.stderr)
	fmt.Fprintf(a.stderr, "thinroot: build %s queued\n", b.ID)
	final, err := c.Events(ctx, b.ID, func(ev builder.Event) {
		switch ev.Type {
		case "log":
			io.WriteString(a.stdout, ev.Data)
		case "state":
			// The final state is reported once, below.
			if (tty || ev.State != builder.StateQueued) && !builder.Final(ev.State) {
				p.phase("%s", phaseText(ev.State))
			}
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return &cliError{code: exitInterrupted, err: errInterrupted,
				msg:  fmt.Sprintf("stopped following build %s; it goes on", b.ID),
				hint: fmt.Sprintf("`thinroot logs -f %s` follows it again, `thinroot wait %s` waits for its result, `thinroot cancel %s` stops it", b.ID, b.ID, b.ID)}
		}
		if err := c.wrap(err); errors.As(err, new(*cliError)) {
			return err
		}
		return &cliError{code: exitError, err: err, msg: fmt.Sprintf("lost the daemon while following build %s (%s)", b.ID, oneLine(err.Error())),
			hint: fmt.Sprintf("when it runs again, `thinroot wait %s` says how the build ended", b.ID)}
	}
	return buildExit(a, final, p.elapsed())
}

// buildExit reports how a build ended and returns its status as an error
// (nil when it succeeded).
func buildExit(a *app, b builder.Build, took time.Duration) error {
	switch b.State {
	case builder.StateSucceeded:
		in := ""
		if took > 0 {
			in = " in " + fmtDuration(took)
		}
		fmt.Fprintf(a.stderr, "thinroot: build %s succeeded%s; results in %s\n", b.ID, in, b.ResultDir)
		return nil
	case builder.StateFailed:
		code := exitError
		if b.ExitCode != nil && *b.ExitCode > 0 && *b.ExitCode < 256 {
			code = *b.ExitCode
		}
		if b.Error != "" {
			// Why, when thinroot knows better than the status.
			hint := fmt.Sprintf("its log: thinroot logs %s (and build.log in %s)", b.ID, b.ResultDir)
			if strings.HasPrefix(b.Error, "out of memory") {
				hint = fmt.Sprintf("its log: thinroot logs %s; give it more with --memory-max", b.ID)
			}
			return &cliError{code: code, msg: fmt.Sprintf("build %s failed: %s", b.ID, b.Error), hint: hint}
		}
		return &cliError{code: code, msg: fmt.Sprintf("build %s failed with exit status %d", b.ID, code),
			hint: fmt.Sprintf("its log: thinroot logs %s (and build.log in %s)", b.ID, b.ResultDir)}
	case builder.StateTimedOut:
		return &cliError{code: exitTimeout, msg: fmt.Sprintf("build %s %s", b.ID, b.Error),
			hint: fmt.Sprintf("its log: thinroot logs %s; give more time with --timeout", b.ID)}
	case builder.StateCancelled:
		return &cliError{code: exitInterrupted, msg: fmt.Sprintf("build %s was cancelled", b.ID)}
	case builder.StateInterrupted:
		return &cliError{code: exitInterrupted, msg: fmt.Sprintf("build %s was interrupted: the daemon stopped while it ran", b.ID),
			hint: "submit it again"}
	}
	code := exitError
	if b.ExitCode != nil && *b.ExitCode > 0 && *b.ExitCode < 256 {
		code = *b.ExitCode
	}
	return &cliError{code: code, msg: fmt.Sprintf("build %s could not run: %s", b.ID, b.Error),
		hint: fmt.Sprintf("its log: thinroot logs %s", b.ID)}
}

func phaseText(state string) string {
	switch state {
	case builder.StateQueued:
		return "queued"
	case builder.StateWaitingInit:
		return "waiting for the init lock (another process is bootstrapping the config)"
	case builder.StateBootstrapping:
		return "bootstrapping the config"
	case builder.StateCreatingWorkdir:
		return "creating the workdir"
	case builder.StateBuilding:
		return "building"
	case builder.StateCollecting:
		return "collecting results"
	}
	return state
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func runBuilds(ctx context.Context, a *app, args []string) error {
	if getBool(a.flags, "prune") {
		if len(args) > 0 {
			return usageErr("--prune takes no build ids; it picks by --older-than and --keep")
		}
		return runPrune(ctx, a)
	}
	for _, f := range []string{"older-than", "keep", "kept-workdirs"} {
		if changed(a.flags, f) {
			return usageErr("--%s goes with --prune", f)
		}
	}
	c := a.client()
	var bs []builder.Build
	if len(args) > 0 {
		for _, id := range args {
			b, err := c.Get(ctx, id)
			if err != nil {
				return noBuild(c, id, err)
			}
			bs = append(bs, b)
		}
	} else {
		var err error
		if bs, err = c.List(ctx); err != nil {
			return c.wrap(err)
		}
	}
	if a.jsonOut() {
		if bs == nil {
			bs = []builder.Build{}
		}
		return writeJSON(a.stdout, bs)
	}
	if len(args) > 0 {
		for i, b := range bs {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprint(a.stdout, builder.StatusText(b))
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONFIG\tSTATE\tEXIT\tBOOTSTRAPPED\tSUBMITTED\tELAPSED\tRESULT")
	for _, b := range bs {
		exit := "-"
		if b.ExitCode != nil {
			exit = fmt.Sprint(*b.ExitCode)
		}
		el := "-"
		if !b.Started.IsZero() {
			end := b.Finished
			if end.IsZero() {
				end = time.Now()
			}
			el = end.Sub(b.Started).Round(100 * time.Millisecond).String()
		}
		boot := "-"
		if b.Bootstrapped {
			boot = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Request.Config, b.State, exit, boot, fmtTime(b.Submitted), el, dash(b.ResultDir))
	}
	return tw.Flush()
}

// noBuild words an unknown build id, or the daemon's error.
func noBuild(c *daemonClient, id string, err error) error {
	var he *builder.HTTPError
	if errors.As(err, &he) && he.Code == 404 {
		return &cliError{code: exitUsage, err: err, msg: fmt.Sprintf("no build %q", id),
			hint: "thinroot builds lists the builds this daemon knows"}
	}
	return c.wrap(err)
}

func runLogs(ctx context.Context, a *app, args []string) error {
	c := a.client()
	id := args[0]
	_, err := c.Log(ctx, id, 0, getBool(a.flags, "follow"), a.stdout)
	if err != nil {
		if ctx.Err() != nil {
			return silentExit{exitInterrupted}
		}
		return noBuild(c, id, err)
	}
	return nil
}

func runWait(ctx context.Context, a *app, args []string) error {
	c := a.client()
	b, err := c.Wait(ctx, args[0])
	if err != nil {
		if ctx.Err() != nil {
			return &cliError{code: exitInterrupted, err: errInterrupted, msg: fmt.Sprintf("stopped waiting for build %s; it goes on", args[0])}
		}
		return noBuild(c, args[0], err)
	}
	if a.jsonOut() {
		if err := writeJSON(a.stdout, b); err != nil {
			return err
		}
	}
	took := time.Duration(0)
	if !b.Started.IsZero() && !b.Finished.IsZero() {
		took = b.Finished.Sub(b.Started)
	}
	return buildExit(a, b, took)
}

func runCancel(ctx context.Context, a *app, args []string) error {
	c := a.client()
	id := args[0]
	b, err := c.Cancel(ctx, id)
	var he *builder.HTTPError
	if errors.As(err, &he) && he.Code == 409 {
		state := ""
		if rec, err := c.Get(ctx, id); err == nil {
			state = " (" + rec.State + ")"
		}
		return &cliError{code: exitError, err: err, msg: fmt.Sprintf("build %s has already ended%s", id, state),
			hint: "nothing to cancel; thinroot builds " + id + " shows how it ended"}
	}
	if err != nil {
		return noBuild(c, id, err)
	}
	fmt.Fprintf(a.stdout, "cancelling build %s (%s)\n", b.ID, b.State)
	return nil
}
