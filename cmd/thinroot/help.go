package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

var cmdHelp = &command{
	name: "help", group: "other", args: []arg{{name: "COMMAND", kind: argOther, optional: true, repeat: true}},
	summary: "show help for thinroot, a command, a group, or a topic (ad-hoc, exit-codes)",
	run:     runHelp,
}

func runHelp(ctx context.Context, a *app, args []string) error {
	w := a.stdout
	if len(args) == 0 {
		usage(w)
		return nil
	}
	switch strings.Join(args, " ") {
	case "ad-hoc":
		adHocHelp(w)
		return nil
	case "exit-codes":
		exitCodesHelp(w)
		return nil
	}
	if c, rest := findCommand(args); c != nil && len(rest) == 0 && !c.hidden {
		commandUsage(w, c)
		return nil
	}
	if g, cmds := commandGroup(args[0]); g != "" && len(args) == 1 {
		groupUsage(w, g, cmds)
		return nil
	}
	return unknownCommand(args, "help ")
}

// unknownCommand refuses words that name no command, suggesting the
// closest one.
func unknownCommand(args []string, prefix string) error {
	if g, cmds := commandGroup(args[0]); g != "" {
		var verbs []string
		for _, c := range cmds {
			verbs = append(verbs, c.words()[1])
		}
		if len(args) < 2 {
			return usageErr("%s needs a command: %s (thinroot %s --help)", g, orList(verbs), g)
		}
		msg := fmt.Sprintf("unknown command %q", g+" "+args[1])
		if s := suggest(args[1], verbs); s != "" {
			return usageErr("%s; did you mean %q? (thinroot %s --help lists them)", msg, g+" "+s, g)
		}
		return usageErr("%s: %s takes %s (thinroot %s --help)", msg, g, orList(verbs), g)
	}
	var names []string
	seen := map[string]bool{}
	for _, c := range visible() {
		if w := c.words()[0]; !seen[w] {
			seen[w] = true
			names = append(names, w)
		}
	}
	if prefix != "" {
		names = append(names, "ad-hoc", "exit-codes")
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if prefix != "" {
		msg = fmt.Sprintf("no help for %q", args[0])
	}
	if s := suggest(args[0], names); s != "" {
		return usageErr("%s; did you mean %q? (thinroot help lists the commands)", msg, s)
	}
	return usageErr("%s (thinroot help lists the commands)", msg)
}

// width is the width help is wrapped to: $COLUMNS, else the terminal's,
// else 80; at most 100 and at least 40.
func width(w io.Writer) int {
	n := 0
	if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 0 {
		n = c
	} else if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			n = int(ws.Col)
		}
	}
	if n == 0 {
		n = 80
	}
	return max(40, min(n, 100))
}

// wrap breaks text into lines of at most width columns, the first line
// starting at column first and the others indented by indent.
func wrap(text string, width, first, indent int) []string {
	var lines []string
	line := ""
	col := first
	for _, word := range strings.Fields(text) {
		if line != "" && col+1+len(word) > width {
			lines = append(lines, line)
			line, col = "", indent
		}
		if line != "" {
			line += " "
			col++
		}
		line += word
		col += len(word)
	}
	return append(lines, line)
}

// writeWrapped prints text wrapped at the writer's width, every line
// indented by indent.
func writeWrapped(w io.Writer, text string, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, l := range wrap(text, width(w), indent, indent) {
		fmt.Fprintln(w, pad+l)
	}
}

// table prints "name  text" rows, text wrapped into its column.
func table(w io.Writer, rows [][2]string) {
	col := 0
	for _, r := range rows {
		col = max(col, len(r[0]))
	}
	col = min(col, 28)
	wd := width(w)
	for _, r := range rows {
		start := 2 + col + 2
		if len(r[0]) > col {
			fmt.Fprintf(w, "  %s\n", r[0])
			r[0] = ""
		}
		lines := wrap(r[1], wd, start, start)
		fmt.Fprintf(w, "  %-*s  %s\n", col, r[0], lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", start), l)
		}
	}
}

// usage is `thinroot help`.
func usage(w io.Writer) {
	fmt.Fprintf(w, "thinroot: thin-provisioned buildroots, the mock LVM way\n\nUsage: thinroot [global flags] COMMAND [flags] [ARGS]\n")
	for _, g := range groups {
		var rows [][2]string
		for _, c := range visible() {
			if c.group == g.name {
				rows = append(rows, [2]string{c.name, c.summary})
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", g.title)
		table(w, rows)
	}
	fmt.Fprintf(w, "\nGlobal flags (before or after the command):\n")
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	g, _ := newGlobals()
	g.register(fs)
	fs.StringP("config", "r", "", "the config of the command that takes one (mock's -r)")
	fs.Bool("version", false, "print the version and exit")
	fs.BoolP("help", "h", false, "show help")
	flagUsages(w, fs)
	fmt.Fprintln(w)
	writeWrapped(w, `Run "thinroot help COMMAND" (or "thinroot COMMAND --help") for a command's flags, "thinroot help exit-codes" for the exit statuses; man thinroot(1) has all of it.`, 0)
}

// groupUsage is the help of a command group such as pool.
func groupUsage(w io.Writer, name string, cmds []*command) {
	fmt.Fprintf(w, "Usage: thinroot %s COMMAND [flags] [ARGS]\n\n", name)
	for _, g := range groups {
		if g.name == name && g.help != "" {
			writeWrapped(w, g.help, 0)
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "Commands:\n")
	var rows [][2]string
	for _, c := range cmds {
		rows = append(rows, [2]string{strings.TrimPrefix(c.name, name+" "), c.summary})
	}
	table(w, rows)
	fmt.Fprintln(w)
	writeWrapped(w, fmt.Sprintf(`Run "thinroot %s COMMAND --help" for a command's flags.`, name), 0)
}

// commandUsage is a command's own help.
func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n", c.usageLine())
	text := capitalize(c.summary) + "."
	if c.help != "" {
		text += " " + c.help
	}
	writeWrapped(w, text, 0)
	if c.mock != "" {
		fmt.Fprintln(w)
		writeWrapped(w, "mock: "+c.mock, 0)
	}
	if c.raw {
		return
	}
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	c.addFlags(fs, nil)
	adhoc := map[string]bool{}
	for _, n := range adHocFlagNames() {
		adhoc[n] = true
	}
	own := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		if !adhoc[f.Name] && f.Name != "ad-hoc" && !f.Hidden {
			own.AddFlag(f)
		}
	})
	fmt.Fprintf(w, "\nFlags:\n")
	flagUsages(w, own)
	if c.has(useAdHoc) {
		fmt.Fprintln(w)
		writeWrapped(w, `Ad hoc config: --ad-hoc and `+strconv.Itoa(len(adhoc))+` flags (--pool, --size, --bootstrap, ...) define a config on the command line when its name has no config file; "thinroot help ad-hoc" lists them.`, 0)
	}
	fmt.Fprintln(w)
	writeWrapped(w, "Global flags: "+strings.Join(globalFlagNames(), ", ")+` ("thinroot help" describes them).`, 0)
}

// adHocHelp is `thinroot help ad-hoc`.
func adHocHelp(w io.Writer) {
	writeWrapped(w, `Ad hoc configs. A command that takes CONFIG reads the config file of that name from the config dir. A name that has no config file can instead be defined on the command line with the flags below, given to every command that works on it (init, snapshot, workdir create, mount, serve, ...), as a config file would be read by each: with --ad-hoc, or with any of these flags. A name that has a config file refuses them: they would override what the file says; change the file instead. A command other than init, mount and serve on an ad hoc config needs the config's volumes to exist (thinroot init makes them).`, 0)
	fmt.Fprintf(w, "\nFlags:\n")
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	adHocFlags(fs)
	flagUsages(w, fs)
	fmt.Fprintln(w)
	writeWrapped(w, "Example: thinroot init try --ad-hoc --pool scratch --size 2G -- /bin/sh /usr/share/thinroot/bootstrap/busybox.sh", 0)
}

// exitCodesHelp is `thinroot help exit-codes`.
func exitCodesHelp(w io.Writer) {
	writeWrapped(w, "Exit statuses of thinroot. thinroot build and thinroot wait exit with the build's status instead: 0 when it succeeded, its command's exit status when it failed (128+N when a signal N killed it), 11 when it timed out, 7 when it was cancelled or interrupted, 1 when thinroot could not run it.", 0)
	fmt.Fprintln(w)
	var rows [][2]string
	for _, e := range exitCodes {
		code := strconv.Itoa(e.code)
		if e.code == exitSignal {
			code = "128+N"
		}
		rows = append(rows, [2]string{code, e.name + ": " + e.meaning})
	}
	table(w, rows)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// metavars name the values of flags whose type does not.
var metavars = map[string]string{
	"config": "CONFIG", "config-dir": "DIR", "state-dir": "DIR", "basedir": "DIR", "log-level": "LEVEL",
	"log-format": "FORMAT", "backend": "BACKEND", "volume-group": "VG", "pool": "POOL", "pool-dir": "DIR",
	"filesystem": "FS", "mkfs-command": "CMD", "mkfs-arg": "ARG", "mount-options": "OPTS", "bootstrap": "WORD",
	"uniqueext": "EXT", "snapshot": "NAME", "source": "DIR", "socket": "PATH", "mount": "DIR", "group": "GROUP",
	"jobs": "N", "cgroup-parent": "NAME", "retain-count": "N", "keep": "N", "metrics-listen": "ADDR",
}

// flagUsages prints a flag table: "-r, --config CONFIG  usage", sorted,
// wrapped to the writer's width.
func flagUsages(w io.Writer, fs *pflag.FlagSet) {
	var rows [][2]string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		name := "    --" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", --" + f.Name
		}
		if f.Value.Type() != "bool" {
			mv := metavars[f.Name]
			if mv == "" {
				mv = f.Value.Type()
				if mv == "string" || mv == "stringArray" {
					mv = "VALUE"
				}
			}
			name += " " + mv
		}
		usage := f.Usage
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && d != "[]" && !strings.Contains(usage, "default") {
			usage += " (default " + d + ")"
		}
		rows = append(rows, [2]string{name, usage})
	})
	table(w, rows)
}
