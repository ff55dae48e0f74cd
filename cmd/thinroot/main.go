// Command thinroot manages thin-provisioned buildroots the way mock's LVM
// plugin does, shows them as a FUSE tree and runs builds in them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/sandbox"
)

// command is one verb (or "noun verb") of the CLI.
type command struct {
	name    string // "init", "pool create"
	args    string // usage after the flags, e.g. "CONFIG"
	summary string
	// mock names the mock option the verb corresponds to, if any.
	mock  string
	flags func(fs *pflag.FlagSet)
	run   func(ctx context.Context, a *app, args []string) error
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func findCommand(args []string) (*command, []string) {
	var best *command
	n := 0
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(words) <= len(args) && len(words) > n {
			match := true
			for i, w := range words {
				if args[i] != w {
					match = false
					break
				}
			}
			if match {
				best, n = c, len(words)
			}
		}
	}
	if best == nil {
		return nil, args
	}
	return best, args[n:]
}

// exitError carries an exit status out of a command (a build's status).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// A build's sandbox re-executes this binary as its init; that must
	// happen before anything else.
	sandbox.Main()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	g := newGlobals()
	// Global flags may come before the verb.
	pre := pflag.NewFlagSet("thinroot", pflag.ContinueOnError)
	pre.SetOutput(io.Discard)
	pre.SetInterspersed(false)
	g.register(pre)
	showVersion := pre.Bool("version", false, "print the version and exit")
	help := pre.BoolP("help", "h", false, "show help")
	if err := pre.Parse(args); err != nil {
		fmt.Fprintf(stderr, "thinroot: %v\n", err)
		usage(stderr)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	rest := pre.Args()
	if *help || len(rest) == 0 || rest[0] == "help" {
		if len(rest) > 1 && rest[0] == "help" {
			if c, _ := findCommand(rest[1:]); c != nil {
				commandUsage(stdout, c)
				return 0
			}
		}
		usage(stdout)
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	cmd, cargs := findCommand(rest)
	if cmd == nil {
		fmt.Fprintf(stderr, "thinroot: unknown command %q\n", strings.Join(rest, " "))
		usage(stderr)
		return 2
	}
	fs := pflag.NewFlagSet("thinroot "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	chelp := fs.BoolP("help", "h", false, "show help for this command")
	if err := fs.Parse(cargs); err != nil {
		fmt.Fprintf(stderr, "thinroot %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd)
		return 2
	}
	if *chelp {
		commandUsage(stdout, cmd)
		return 0
	}
	a := &app{g: g, stdout: stdout, stderr: stderr, flags: fs}
	err := cmd.run(ctx, a, fs.Args())
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "thinroot %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd)
		return 2
	default:
		fmt.Fprintf(stderr, "thinroot %s: %v\n", cmd.name, err)
		return 1
	}
}

var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "thinroot: thin-provisioned buildroots, the mock LVM way\n\nUsage: thinroot [global flags] COMMAND [flags] [args]\n\nCommands:\n")
	cs := append([]*command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	newGlobals().register(fs)
	fs.Bool("version", false, "print the version and exit")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nRun 'thinroot COMMAND --help' for a command's flags; man thinroot(1) has all of it.\n")
}

func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: thinroot %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.mock != "" {
		fmt.Fprintf(w, "mock equivalent: %s\n", c.mock)
	}
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}
