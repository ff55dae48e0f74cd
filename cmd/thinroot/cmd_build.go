package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/builder"
)

func socketFlag(fs *pflag.FlagSet) {
	fs.String("socket", envOr("THINROOT_SOCKET", DefaultSocket), "the daemon's API socket [$THINROOT_SOCKET]")
}

func init() {
	register(&command{
		name: "build", args: "CONFIG [-- CMD ARGS...]",
		summary: "run a build in a fresh workdir of CONFIG through the daemon, streaming its log; exits with the build's status",
		mock:    "mock -r CONFIG --rebuild (with --uniqueext, --rollback-to, --enable-network)",
		flags: func(fs *pflag.FlagSet) {
			socketFlag(fs)
			fs.String("source", "", "directory bind-mounted read-only at "+builder.SourceDir)
			fs.String("snapshot", "", "snapshot to clone (default: the config's current one)")
			fs.String("uniqueext", "", "unique-ext of the build's workdir (default: b-<build id>)")
			fs.Bool("keep", false, "keep the workdir afterwards (it stays in the tree)")
			fs.Bool("network", false, "let the build use the network")
			fs.Duration("timeout", 0, "stop the build after this long (0: no limit)")
			fs.Bool("detach", false, "print the build id and return without waiting")
			rpmBuildFlags(fs)
		},
		run: runBuild,
	})
	register(&command{
		name: "builds", summary: "list the daemon's builds, newest first",
		flags: func(fs *pflag.FlagSet) {
			socketFlag(fs)
			fs.Bool("json", false, "print JSON")
		},
		run: runBuilds,
	})
	register(&command{
		name: "cancel", args: "BUILD-ID", summary: "stop a queued or running build",
		flags: socketFlag,
		run:   runCancel,
	})
}

func (a *app) client() *builder.Client {
	sock, _ := a.flags.GetString("socket")
	return builder.NewClient(sock)
}

// Exit statuses of thinroot build besides the build's own.
const (
	exitTimedOut = 124 // as timeout(1)
	exitCancel   = 130
	exitTrouble  = 1
)

func runBuild(ctx context.Context, a *app, args []string) error {
	if len(args) < 1 {
		return usageErr("want CONFIG")
	}
	req := builder.Request{Config: args[0]}
	if dash := a.flags.ArgsLenAtDash(); dash >= 0 {
		if dash != 1 {
			return usageErr("want CONFIG before --")
		}
		req.Command = args[dash:]
	} else if len(args) > 1 {
		return usageErr("extra arguments %q (put the command after --)", args[1:])
	}
	fl := a.flags
	src, _ := fl.GetString("source")
	if src != "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		req.Source = abs
	}
	if err := rpmRequest(fl, &req); err != nil {
		return err
	}
	req.Snapshot, _ = fl.GetString("snapshot")
	req.UniqueExt, _ = fl.GetString("uniqueext")
	req.Keep, _ = fl.GetBool("keep")
	req.Network, _ = fl.GetBool("network")
	to, _ := fl.GetDuration("timeout")
	req.Timeout = builder.Duration(to)
	detach, _ := fl.GetBool("detach")

	c := a.client()
	b, err := c.Submit(ctx, req)
	if err != nil {
		return err
	}
	if detach {
		fmt.Fprintln(a.stdout, b.ID)
		return nil
	}
	tty := isTerminal(a.stderr)
	start := time.Now()
	fmt.Fprintf(a.stderr, "thinroot: build %s queued\n", b.ID)
	final, err := c.Events(ctx, b.ID, func(ev builder.Event) {
		switch ev.Type {
		case "log":
			io.WriteString(a.stdout, ev.Data)
		case "state":
			if tty || ev.State != builder.StateQueued {
				fmt.Fprintf(a.stderr, "thinroot: [%s] %s\n", fmtElapsed(time.Since(start)), phaseText(ev.State))
			}
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(a.stderr, "thinroot: stopped following build %s; it goes on (thinroot cancel %s stops it)\n", b.ID, b.ID)
			return exitError{exitCancel}
		}
		return err
	}
	return buildExit(a, final)
}

func buildExit(a *app, b builder.Build) error {
	switch b.State {
	case builder.StateSucceeded:
		fmt.Fprintf(a.stderr, "thinroot: build %s succeeded; results in %s\n", b.ID, b.ResultDir)
		return nil
	case builder.StateFailed:
		code := exitTrouble
		if b.ExitCode != nil && *b.ExitCode > 0 && *b.ExitCode < 256 {
			code = *b.ExitCode
		}
		fmt.Fprintf(a.stderr, "thinroot: build %s failed with exit status %d; log in %s\n", b.ID, code, b.ResultDir)
		return exitError{code}
	case builder.StateTimedOut:
		fmt.Fprintf(a.stderr, "thinroot: build %s %s\n", b.ID, b.Error)
		if code, ok := rpmExit(b); ok {
			return exitError{code}
		}
		return exitError{exitTimedOut}
	case builder.StateCancelled:
		fmt.Fprintf(a.stderr, "thinroot: build %s was cancelled\n", b.ID)
		return exitError{exitCancel}
	}
	fmt.Fprintf(a.stderr, "thinroot: build %s: %s: %s\n", b.ID, b.State, b.Error)
	return exitError{exitTrouble}
}

func phaseText(state string) string {
	switch state {
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

func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
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
	if len(args) != 0 {
		return usageErr("builds takes no arguments")
	}
	bs, err := a.client().List(ctx)
	if err != nil {
		return err
	}
	if j, _ := a.flags.GetBool("json"); j {
		if bs == nil {
			bs = []builder.Build{}
		}
		return json.NewEncoder(a.stdout).Encode(bs)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Request.Config, b.State, exit, boot, fmtTime(b.Submitted), el, b.ResultDir)
	}
	return tw.Flush()
}

func runCancel(ctx context.Context, a *app, args []string) error {
	id, err := oneArg(args, "BUILD-ID")
	if err != nil {
		return err
	}
	b, err := a.client().Cancel(ctx, id)
	var he *builder.HTTPError
	if errors.As(err, &he) && he.Code == 409 {
		return fmt.Errorf("build %s has already ended", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "cancelling build %s (%s)\n", b.ID, b.State)
	return nil
}
