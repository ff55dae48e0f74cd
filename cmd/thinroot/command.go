package main

import (
	"context"
	"strings"

	"github.com/spf13/pflag"
)

// The command table.
//
// How to add a command:
//
//  1. Write `var cmdFoo = &command{...}` beside its siblings (cmd_*.go):
//     name (one word, or "group verb" for a verb of a group such as
//     "pool create"), group (which section of `thinroot help` lists it),
//     args (positional arguments with what each completes to), tail (what
//     may follow "--", if anything), a one-line summary (at most about 60
//     columns), an optional help paragraph, mock's equivalent, and uses:
//     the shared flag sets it takes (useConfig for -r CONFIG, useUniqueExt,
//     useAdHoc for the ad hoc config flags, useThresholds, useDaemon for
//     --socket, useJSON for --json, useTree for the tree's flags). Its own
//     flags go in flags; give every flag a usage that names the allowed
//     values, and use the checked value types of flags.go (newSize,
//     newPercent, newEnum, countValue, durationValue, absPath) so a bad
//     value is refused while parsing, naming the flag; a name for its
//     value in help goes in metavars (help.go).
//  2. Add it to the list below, in the place `thinroot help` shows it. A
//     new group also gets a line in groups.
//  3. run gets the positional arguments already counted against args (a
//     missing or extra one is a usage error before run); after "--", tail
//     arguments are in a.tail. Return errors made by usageErr, configErr,
//     withHint or failf (exit.go): each says what went wrong and what to
//     do, in one line, and carries its exit status. Plain errors from the
//     packages are classified by classify. Never print an error yourself.
//  4. Output: text for people on stdout; with useJSON, --json prints the
//     schema of json.go (snake_case keys, RFC 3339 times, sizes in bytes,
//     arrays for lists); logs and progress go to stderr.
//  5. Document it in man/thinroot.1.md (TestManPageCoversCLI fails until
//     every command and flag is there) and in README.md's table when mock
//     has an equivalent. Completion comes from the table by itself.
//
// A command that parses its own argv (a mock-compatible front end) sets
// raw: it then gets every argument after its name untouched.
var commands []*command

func init() {
	commands = []*command{
		cmdInit, cmdSnapshot, cmdRollbackTo, cmdListSnapshots, cmdRemoveSnapshot, cmdScrub,
		cmdShell, cmdChroot, cmdInstall,
		cmdWorkdirCreate, cmdWorkdirRemove, cmdWorkdirList,
		cmdBuild, cmdBuilds, cmdLogs, cmdWait, cmdCancel, cmdMock,
		cmdServe, cmdMount,
		cmdPoolCreate, cmdPoolList, cmdPoolStats, cmdPoolRemove,
		cmdConfigList, cmdConfigShow,
		cmdHelp, cmdVersion, cmdCompletion, cmdComplete,
	}
}

// groups are the sections of `thinroot help`, in order. A group whose
// name is also a word of its commands ("pool") is a command group: `thinroot
// pool` and `thinroot pool --help` show its help.
var groups = []struct{ name, title, help string }{
	{"buildroots", "Buildroots (mock's LVM verbs)", ""},
	{"workdir", "Workdirs", "A workdir is a writable clone of a snapshot for one unique-ext, mounted where mock mounts its root (<basedir>/<root>-<ext>/root)."},
	{"builds", "Builds (through the daemon)", ""},
	{"daemon", "The daemon and the tree", ""},
	{"pool", "Pools", "A thin pool holds the volumes of every config that names it (lvm_root_opts.pool_name, mockbuild by default)."},
	{"config", "Configs", "Configs are mock's own config files, read as mock reads them from the config dir (--config-dir, /etc/mock by default)."},
	{"other", "Other", ""},
}

// command is one verb of the CLI.
type command struct {
	name    string // "init", "pool create"
	group   string // a name in groups
	args    []arg  // positional arguments
	tail    string // what may follow "--" ("CMD ARGS..."); "" when nothing does
	summary string // one line
	help    string // a paragraph for the command's own help, optional
	mock    string // mock's equivalent, if any
	uses    uses
	flags   func(fs *pflag.FlagSet) // the command's own flags
	raw     bool                    // no flag parsing: run gets its argv as typed
	hidden  bool                    // not listed in help or completion
	run     func(ctx context.Context, a *app, args []string) error
}

// arg is a positional argument.
type arg struct {
	name     string  // CONFIG, NAME, EXT...
	kind     argKind // what completes it
	optional bool
	repeat   bool // takes any number (at least one unless optional)
}

// argKind says what an argument names, for completion and for -r.
type argKind int

const (
	argOther argKind = iota
	argConfig
	argSnapshot // a snapshot of the config named before it
	argExt      // a workdir's unique-ext of the config named before it
	argPool
	argBuild
	argDir
	argCommand
	argShell
)

// uses are the shared flag sets a command takes.
type uses uint

const (
	useConfig     uses = 1 << iota // -r/--config CONFIG instead of the CONFIG argument (mock's -r)
	useUniqueExt                   // --uniqueext EXT (mock's --uniqueext)
	useAdHoc                       // the ad hoc config flags (--ad-hoc, --pool, --size, ...)
	useThresholds                  // --warn-percent, --refuse-percent for new pools
	useDaemon                      // --socket
	useJSON                        // --json
	useTree                        // the tree's flags (mount, serve)
	useConfigs                     // -r/--config NAME, repeatable (mount, serve)
)

func (c *command) has(u uses) bool { return c.uses&u != 0 }

// words are the words that select the command.
func (c *command) words() []string { return strings.Fields(c.name) }

// usageLine is "thinroot NAME [flags] ARGS [-- TAIL]".
func (c *command) usageLine() string {
	var b strings.Builder
	b.WriteString("thinroot " + c.name)
	if !c.raw {
		b.WriteString(" [flags]")
	}
	if s := c.argsText(); s != "" {
		b.WriteString(" " + s)
	}
	return b.String()
}

// argsText is the positional part of the usage line.
func (c *command) argsText() string {
	var parts []string
	for _, a := range c.args {
		s := a.name
		if a.repeat {
			s += "..."
		}
		if a.optional {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	if c.tail != "" {
		parts = append(parts, "[-- "+c.tail+"]")
	}
	return strings.Join(parts, " ")
}

// argBounds are the least and most positional arguments (-1: no limit).
func (c *command) argBounds() (int, int) {
	lo, hi := 0, 0
	for _, a := range c.args {
		if !a.optional {
			lo++
		}
		if a.repeat {
			hi = -1
		} else if hi >= 0 {
			hi++
		}
	}
	return lo, hi
}

// takesConfigArg tells whether the first argument is a CONFIG that -r may give.
func (c *command) takesConfigArg() bool {
	return len(c.args) > 0 && c.args[0].kind == argConfig && c.has(useConfig)
}

// findCommand picks the command named by the first words of args.
func findCommand(args []string) (*command, []string) {
	var best *command
	n := 0
	for _, c := range commands {
		w := c.words()
		if len(w) > len(args) || len(w) <= n {
			continue
		}
		match := true
		for i := range w {
			if args[i] != w[i] {
				match = false
				break
			}
		}
		if match {
			best, n = c, len(w)
		}
	}
	return best, args[n:]
}

// commandGroup returns the group that args[0] names ("pool"), if any.
func commandGroup(word string) (name string, cmds []*command) {
	for _, c := range commands {
		if w := c.words(); len(w) == 2 && w[0] == word && !c.hidden {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		return "", nil
	}
	return word, cmds
}

// visible are the commands help and completion show.
func visible() []*command {
	var out []*command
	for _, c := range commands {
		if !c.hidden {
			out = append(out, c)
		}
	}
	return out
}
