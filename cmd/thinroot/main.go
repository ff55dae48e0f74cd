// Command thinroot manages thin-provisioned buildroots the way mock's LVM
// plugin does, shows them as a FUSE tree and runs builds in them.
//
// The commands are in the table of command.go, which says how to add one;
// exit statuses and the error style are in exit.go, flags in flags.go,
// the JSON schema in json.go.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/internal/fusesrv"
	"github.com/thinroot/thinroot/rpmroot"
	"github.com/thinroot/thinroot/sandbox"
)

func main() {
	// A build's sandbox and a tree's watchdog re-execute this binary;
	// that must happen before anything else.
	sandbox.Main()
	fusesrv.WatchdogMain()
	rpmroot.BootstrapMain()
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "mock" {
		// Installed as mock (a link or an alternative): mock's command line.
		args = append([]string{"mock"}, args...)
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// signals records the first signal that stopped the command.
type signals struct {
	mu  sync.Mutex
	got os.Signal
}

func (s *signals) first() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// run runs the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sig, stop := watchSignals(ctx, cancel)
	defer stop()
	rep := &reporter{sig: sig, stderr: stderr}
	g, envErr := newGlobals()
	// Global flags, and mock's -r CONFIG, may come before the command.
	pre := pflag.NewFlagSet("thinroot", pflag.ContinueOnError)
	pre.SetOutput(io.Discard)
	pre.SetInterspersed(false)
	g.register(pre)
	showVersion := pre.Bool("version", false, "")
	help := pre.BoolP("help", "h", false, "")
	preConfig := pre.StringArrayP("config", "r", nil, "")
	if err := pre.Parse(args); err != nil {
		return rep.report(parseError(nil, pre, err))
	}
	if err := attachedConfig(args[:len(args)-len(pre.Args())]); err != nil {
		return rep.report(err)
	}
	if envErr != nil {
		return rep.report(envErr)
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	rest := pre.Args()
	if len(rest) == 0 {
		if *help {
			usage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "thinroot: a command is needed\n\n")
		usage(stderr)
		return exitUsage
	}
	if *help {
		rest = append([]string{"help"}, rest...)
	}
	cmd, cargs := findCommand(rest)
	if cmd == nil || cmd.hidden && cmd.name != rest[0] {
		return rep.unknown(rest, stdout)
	}
	rep.cmd = cmd
	a := &app{cmd: cmd, g: g, stdout: stdout, stderr: stderr, signals: sig}
	defer a.close()
	return rep.finish(dispatch(ctx, a, cargs, *preConfig))
}

// watchSignals cancels ctx on SIGINT, SIGTERM or SIGHUP and records the
// first of them, for the exit status.
func watchSignals(ctx context.Context, cancel context.CancelCauseFunc) (*signals, func()) {
	sig := &signals{}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for {
			select {
			case s := <-ch:
				sig.mu.Lock()
				if sig.got == nil {
					sig.got = s
				}
				sig.mu.Unlock()
				cancel(errInterrupted)
			case <-ctx.Done():
				return
			}
		}
	}()
	return sig, func() { signal.Stop(ch) }
}

// reporter prints a command's error in the one-line style and turns it
// into the exit status (a signal's, when one stopped the command).
type reporter struct {
	sig    *signals
	stderr io.Writer
	cmd    *command
}

func (r *reporter) report(err error) int {
	code, msg := classify(err)
	if s := r.sig.first(); s != nil && code != exitUsage {
		code = signalExit(s)
	}
	if msg != "" {
		where := "thinroot"
		if r.cmd != nil {
			where += " " + r.cmd.name
		}
		fmt.Fprintf(r.stderr, "%s: %s\n", where, msg)
	}
	return code
}

func (r *reporter) finish(err error) int {
	if err == nil {
		return exitOK
	}
	return r.report(err)
}

// unknown answers words that name no command: a group's name alone (or
// with --help) lists the group's commands.
func (r *reporter) unknown(rest []string, stdout io.Writer) int {
	g, cmds := commandGroup(rest[0])
	if g == "" || len(rest) > 1 && !isHelpFlag(rest[1]) {
		return r.report(unknownCommand(rest, ""))
	}
	if len(rest) > 1 {
		groupUsage(stdout, g, cmds)
		return exitOK
	}
	code := r.report(unknownCommand(rest, ""))
	fmt.Fprintln(r.stderr)
	groupUsage(r.stderr, g, cmds)
	return code
}

// dispatch parses the command's flags and arguments and runs it.
func dispatch(ctx context.Context, a *app, cargs, preConfig []string) error {
	cmd := a.cmd
	if cmd.raw {
		return cmd.run(ctx, a, cargs)
	}
	fs := pflag.NewFlagSet("thinroot "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cmd.addFlags(fs, a.g)
	a.flags = fs
	if fs.ShorthandLookup("r") != nil {
		if err := attachedConfig(cargs); err != nil {
			return err
		}
	}
	if err := fs.Parse(cargs); err != nil {
		return parseError(cmd, fs, err)
	}
	if getBool(fs, "help") {
		commandUsage(a.stdout, cmd)
		return nil
	}
	pos, err := a.positional(preConfig)
	if err != nil {
		return err
	}
	if err := checkFlags(fs); err != nil {
		return err
	}
	return cmd.run(ctx, a, pos)
}

// signalExit is the status for a command stopped by signal s: mock's 7
// for SIGINT, 128+N for the others.
func signalExit(s os.Signal) int {
	if s == os.Interrupt {
		return exitInterrupted
	}
	if n, ok := s.(syscall.Signal); ok {
		return exitSignal + int(n)
	}
	return exitInterrupted
}

func isHelpFlag(s string) bool { return s == "-h" || s == "--help" }

// positional returns the command's positional arguments, checked against
// its table entry: -r CONFIG (given before or after the command) stands
// for the CONFIG argument, and what follows "--" goes to a.tail for a
// command with a tail.
func (a *app) positional(preConfig []string) ([]string, error) {
	c, fs := a.cmd, a.flags
	all := fs.Args()
	pos := all
	if dash := fs.ArgsLenAtDash(); dash >= 0 && c.tail != "" {
		pos, a.tail = all[:dash], all[dash:]
	}
	configs := preConfig
	switch {
	case c.has(useConfigs):
		for _, r := range preConfig {
			fs.Set("config", r)
		}
		configs = nil
	case c.has(useConfig):
		if r := getString(fs, "config"); r != "" {
			configs = append(configs, r)
		}
	}
	if len(configs) > 0 {
		if !c.takesConfigArg() {
			return nil, usageErr("-r does not apply here: thinroot %s takes no config", c.name)
		}
		if len(configs) > 1 {
			return nil, usageErr("-r given twice (%s); give one config", strings.Join(configs, ", "))
		}
		pos = append([]string{configs[0]}, pos...)
	}
	lo, hi := c.argBounds()
	if len(pos) < lo {
		var missing []string
		for _, x := range c.args[len(pos):] {
			if !x.optional {
				missing = append(missing, x.name)
			}
		}
		hint := ""
		if c.takesConfigArg() && len(pos) == 0 {
			hint = " (or -r CONFIG)"
		}
		return nil, usageErr("missing %s%s; usage: %s", strings.Join(missing, " "), hint, c.usageLine())
	}
	if hi >= 0 && len(pos) > hi {
		extra := pos[hi:]
		switch {
		case c.tail != "":
			return nil, usageErr("unexpected %s; put the %s after -- (usage: %s)", quoteWords(extra), c.tail, c.usageLine())
		case len(configs) > 0:
			return nil, usageErr("unexpected %s: CONFIG is given by -r %s (usage: %s)", quoteWords(extra), configs[0], c.usageLine())
		case hi == 0:
			return nil, usageErr("unexpected %s: thinroot %s takes no arguments", quoteWords(extra), c.name)
		}
		return nil, usageErr("unexpected %s (usage: %s)", quoteWords(extra), c.usageLine())
	}
	return pos, nil
}

func quoteWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = fmt.Sprintf("%q", w)
	}
	if len(ws) == 1 {
		return "argument " + q[0]
	}
	return "arguments " + strings.Join(q, " ")
}

// attachedConfig refuses "-rNAME": mock's -r takes the config as the next
// word here, so that a name starting with '-' given before "--" ("-rf")
// is refused naming it rather than read as -r f.
func attachedConfig(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		if len(a) > 2 && a[0] == '-' && a[1] == 'r' {
			return usageErr("%s: -r takes the config as the next word (-r %s); a name that starts with - goes after --", a, a[2:])
		}
	}
	return nil
}
