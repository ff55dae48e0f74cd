// Package mockcli parses mock's command line as mock parses it, for the
// `mock` that build farms call (farm-contract §0, §1.2-1.3, §2, §5.1):
// options and positional arguments interleave, an option mock does not
// know lands among the positional arguments in its place, what follows
// "--" is positional, the mode comes from the last mode option (or a
// legacy first word, or rebuild by default), and --scrub makes the mode
// clean. It also says which exit status each command-line failure gets
// (mock's: 2 for the parser, 5 for BadCmdline, 50 for a mode missing its
// arguments). The package is pure: it reads no files and runs nothing.
package mockcli

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Exit statuses of mock that the parse and the modes' argument checks
// give (mock/py/mockbuild/exception.py, mock.py).
const (
	ExitParser     = 2  // the option parser refused the line (argparse's status)
	ExitBadCmdline = 5  // BadCmdline
	ExitModeArgs   = 50 // a mode without the arguments it needs
)

// Modes.
const (
	ModeRebuild   = "rebuild"
	ModeBuildSRPM = "buildsrpm"
	ModeInit      = "init"
	ModeChroot    = "chroot"
	ModeShell     = "shell"
	ModeInstall   = "install"
	ModeCopyIn    = "copyin"
	ModeCopyOut   = "copyout"
	ModeClean     = "clean"
	ModePrintRoot = "print-root-path"
)

// ScrubChoices are the values --scrub accepts (mock's list, plus
// bootstrap, which mock takes too).
var ScrubChoices = []string{"chroot", "cache", "root-cache", "c-cache", "yum-cache", "dnf-cache", "lvm", "overlayfs", "bootstrap", "all"}

// Options is a parsed command line.
type Options struct {
	Root      string // -r: a config name (may hold '/') or a path ending in .cfg
	ConfigDir string // --configdir
	Mode      string
	// Args are the positional arguments in order, unknown options among
	// them where they stood; a leading "--" is dropped.
	Args []string
	// Unknown are the options mock does not know, also kept in Args.
	Unknown []string
	Scrub   []string

	NoClean        bool // -n/--no-clean
	NoCleanupAfter bool // -N/--no-cleanup-after
	CleanupAfter   bool // --cleanup-after
	ResultDir      string
	UniqueExt      string
	Target         string // --target: rpmbuild --target
	Arch           string // --arch: the kernel personality
	Defines        []string
	With, Without  []string
	Unpriv         bool
	Cwd            string
	Spec, Sources  string
	EnableNetwork  bool
	Quiet, Verbose bool
	PluginOptions  []string // PLUGIN:KEY=VALUE
	ConfigOpts     []string // --config-opts KEY=VALUE
	// Accepted and ignored: thinroot has one isolation (its own
	// namespaces) and no bootstrap chroot or image.
	Isolation           string
	OldChroot           bool
	NewChroot           bool
	BootstrapImageReady bool
	BootstrapChroot     *bool
	Offline             bool
	RpmbuildTimeout     string
	Help, Version       bool
}

// Error is a command line mock refuses, with the exit status it gives.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func parserErr(format string, a ...any) error {
	return &Error{ExitParser, fmt.Sprintf(format, a...)}
}

// kind of an option.
type kind int

const (
	flag    kind = iota // takes no value
	value               // takes one value
	append_             // takes one value, repeatable
	modeOp              // sets the mode
)

type option struct {
	names []string // "-r", "--root"
	kind  kind
	mode  string
	set   func(o *Options, v string) error
}

func b(f func(o *Options)) func(*Options, string) error {
	return func(o *Options, _ string) error { f(o); return nil }
}

func s(f func(o *Options, v string)) func(*Options, string) error {
	return func(o *Options, v string) error { f(o, v); return nil }
}

var options = []option{
	{names: []string{"--rebuild"}, kind: modeOp, mode: ModeRebuild},
	{names: []string{"--buildsrpm"}, kind: modeOp, mode: ModeBuildSRPM},
	{names: []string{"--shell"}, kind: modeOp, mode: ModeShell},
	{names: []string{"--chroot"}, kind: modeOp, mode: ModeChroot},
	{names: []string{"--clean"}, kind: modeOp, mode: ModeClean},
	{names: []string{"--init"}, kind: modeOp, mode: ModeInit},
	{names: []string{"-i", "--install"}, kind: modeOp, mode: ModeInstall},
	{names: []string{"--copyin"}, kind: modeOp, mode: ModeCopyIn},
	{names: []string{"--copyout"}, kind: modeOp, mode: ModeCopyOut},
	{names: []string{"-p", "--print-root-path"}, kind: modeOp, mode: ModePrintRoot},
	// Modes mock has and thinroot does not run: parsed, so that the
	// refusal names the mode rather than a file.
	{names: []string{"--chain"}, kind: modeOp, mode: "chain"},
	{names: []string{"--debug-config"}, kind: modeOp, mode: "debug-config"},
	{names: []string{"--debug-config-expanded"}, kind: modeOp, mode: "debug-config-expanded"},
	{names: []string{"--installdeps"}, kind: modeOp, mode: "installdeps"},
	{names: []string{"--update"}, kind: modeOp, mode: "update"},
	{names: []string{"--remove"}, kind: modeOp, mode: "remove"},
	{names: []string{"--orphanskill"}, kind: modeOp, mode: "orphanskill"},
	{names: []string{"--pm-cmd"}, kind: modeOp, mode: "pm-cmd"},
	{names: []string{"--yum-cmd"}, kind: modeOp, mode: "yum-cmd"},
	{names: []string{"--dnf-cmd"}, kind: modeOp, mode: "dnf-cmd"},
	{names: []string{"--snapshot"}, kind: modeOp, mode: "snapshot"},
	{names: []string{"--remove-snapshot"}, kind: modeOp, mode: "remove-snapshot"},
	{names: []string{"--rollback-to"}, kind: modeOp, mode: "rollback-to"},
	{names: []string{"--umount"}, kind: modeOp, mode: "umount"},
	{names: []string{"--mount"}, kind: modeOp, mode: "mount"},
	{names: []string{"-l", "--list-snapshots"}, kind: modeOp, mode: "list-snapshots"},
	{names: []string{"--list-chroots"}, kind: modeOp, mode: "list-chroots"},

	{names: []string{"--scrub"}, kind: append_, set: func(o *Options, v string) error {
		for _, c := range ScrubChoices {
			if v == c {
				o.Scrub = append(o.Scrub, v)
				return nil
			}
		}
		return parserErr("argument --scrub: invalid choice: %q (choose from %s)", v, strings.Join(ScrubChoices, ", "))
	}},
	{names: []string{"-r", "--root"}, kind: value, set: s(func(o *Options, v string) { o.Root = v })},
	{names: []string{"--configdir"}, kind: value, set: s(func(o *Options, v string) { o.ConfigDir = v })},
	{names: []string{"-n", "--no-clean"}, kind: flag, set: b(func(o *Options) { o.NoClean = true })},
	{names: []string{"-N", "--no-cleanup-after"}, kind: flag, set: b(func(o *Options) { o.NoCleanupAfter, o.CleanupAfter = true, false })},
	{names: []string{"--cleanup-after"}, kind: flag, set: b(func(o *Options) { o.CleanupAfter, o.NoCleanupAfter = true, false })},
	{names: []string{"--resultdir"}, kind: value, set: s(func(o *Options, v string) { o.ResultDir = v })},
	{names: []string{"--uniqueext"}, kind: value, set: s(func(o *Options, v string) { o.UniqueExt = v })},
	{names: []string{"--target"}, kind: value, set: s(func(o *Options, v string) { o.Target = v })},
	{names: []string{"--arch"}, kind: value, set: s(func(o *Options, v string) { o.Arch = v })},
	{names: []string{"-D", "--define"}, kind: append_, set: s(func(o *Options, v string) { o.Defines = append(o.Defines, v) })},
	{names: []string{"--with"}, kind: append_, set: s(func(o *Options, v string) { o.With = append(o.With, v) })},
	{names: []string{"--without"}, kind: append_, set: s(func(o *Options, v string) { o.Without = append(o.Without, v) })},
	{names: []string{"--unpriv"}, kind: flag, set: b(func(o *Options) { o.Unpriv = true })},
	{names: []string{"--cwd"}, kind: value, set: s(func(o *Options, v string) { o.Cwd = v })},
	{names: []string{"--spec"}, kind: value, set: s(func(o *Options, v string) { o.Spec = v })},
	{names: []string{"--sources"}, kind: value, set: s(func(o *Options, v string) { o.Sources = v })},
	{names: []string{"--enable-network"}, kind: flag, set: b(func(o *Options) { o.EnableNetwork = true })},
	{names: []string{"-q", "--quiet"}, kind: flag, set: b(func(o *Options) { o.Quiet, o.Verbose = true, false })},
	{names: []string{"-v", "--verbose"}, kind: flag, set: b(func(o *Options) { o.Verbose, o.Quiet = true, false })},
	{names: []string{"--plugin-option"}, kind: append_, set: s(func(o *Options, v string) { o.PluginOptions = append(o.PluginOptions, v) })},
	{names: []string{"--config-opts"}, kind: append_, set: s(func(o *Options, v string) { o.ConfigOpts = append(o.ConfigOpts, v) })},
	{names: []string{"--isolation"}, kind: value, set: s(func(o *Options, v string) { o.Isolation = v })},
	{names: []string{"--old-chroot"}, kind: flag, set: b(func(o *Options) { o.OldChroot = true })},
	{names: []string{"--new-chroot"}, kind: flag, set: b(func(o *Options) { o.NewChroot = true })},
	{names: []string{"--bootstrap-image-ready"}, kind: flag, set: b(func(o *Options) { o.BootstrapImageReady = true })},
	{names: []string{"--bootstrap-chroot"}, kind: flag, set: b(func(o *Options) { t := true; o.BootstrapChroot = &t })},
	{names: []string{"--no-bootstrap-chroot"}, kind: flag, set: b(func(o *Options) { f := false; o.BootstrapChroot = &f })},
	{names: []string{"--offline"}, kind: flag, set: b(func(o *Options) { o.Offline = true })},
	{names: []string{"--rpmbuild_timeout"}, kind: value, set: s(func(o *Options, v string) { o.RpmbuildTimeout = v })},
	{names: []string{"-h", "--help"}, kind: flag, set: b(func(o *Options) { o.Help = true })},
	{names: []string{"--version"}, kind: flag, set: b(func(o *Options) { o.Version = true })},
}

// lookupLong finds a long option by its name or, as mock's parser does,
// by an unambiguous prefix of it.
func lookupLong(name string) (*option, error) {
	var prefixed []*option
	var names []string
	for i := range options {
		for _, n := range options[i].names {
			if n == name {
				return &options[i], nil
			}
			if strings.HasPrefix(n, "--") && strings.HasPrefix(n, name) {
				prefixed = append(prefixed, &options[i])
				names = append(names, n)
			}
		}
	}
	switch len(prefixed) {
	case 0:
		return nil, nil
	case 1:
		return prefixed[0], nil
	}
	sort.Strings(names)
	return nil, parserErr("ambiguous option: %s could match %s", name, strings.Join(names, ", "))
}

func lookupShort(c byte) *option {
	for i := range options {
		for _, n := range options[i].names {
			if len(n) == 2 && n[1] == c {
				return &options[i]
			}
		}
	}
	return nil
}

// legacyModes are the first words that name a mode when no mode option
// is given (mock's old command style).
var legacyModes = map[string]string{"chroot": ModeChroot, "shell": ModeShell, "rebuild": ModeRebuild, "install": ModeInstall,
	"installdeps": "installdeps", "remove": "remove", "init": ModeInit, "clean": ModeClean}

// Parse parses mock's argv (without the program name). It is long
// because it is one scanner: each kind of word (--, a long option, a
// cluster of short ones, an argument) moves the same index through argv
// and fills the same options.
func Parse(argv []string) (*Options, error) {
	o := &Options{}
	apply := func(opt *option, name, v string) error {
		if opt.kind == modeOp {
			o.Mode = opt.mode
			return nil
		}
		return opt.set(o, v)
	}
	for i := 0; i < len(argv); i++ {
		w := argv[i]
		switch {
		case w == "--":
			// Everything after is positional; the "--" itself goes only
			// when it leads the positionals (mock drops a leading one).
			if len(o.Args) > 0 {
				o.Args = append(o.Args, w)
			}
			o.Args = append(o.Args, argv[i+1:]...)
			i = len(argv)
		case strings.HasPrefix(w, "--") && len(w) > 2:
			name, val, hasVal := strings.Cut(w, "=")
			opt, err := lookupLong(name)
			if err != nil {
				return nil, err
			}
			if opt == nil {
				o.Unknown = append(o.Unknown, w)
				o.Args = append(o.Args, w)
				continue
			}
			long := opt.names[len(opt.names)-1]
			if opt.kind == flag || opt.kind == modeOp {
				if hasVal {
					return nil, parserErr("argument %s: ignored explicit argument %q", long, val)
				}
				if err := apply(opt, long, ""); err != nil {
					return nil, err
				}
				continue
			}
			if !hasVal {
				if i+1 >= len(argv) {
					return nil, parserErr("argument %s: expected one argument", long)
				}
				i++
				val = argv[i]
			}
			if err := apply(opt, long, val); err != nil {
				return nil, err
			}
		case strings.HasPrefix(w, "-") && len(w) > 1:
			// A cluster of short options (-nq), the last of which may
			// take a value attached (-Dfoo) or in the next word.
			if lookupShort(w[1]) == nil {
				o.Unknown = append(o.Unknown, w)
				o.Args = append(o.Args, w)
				continue
			}
			for k := 1; k < len(w); k++ {
				opt := lookupShort(w[k])
				if opt == nil {
					return nil, parserErr("argument %s: unknown option -%c", w, w[k])
				}
				name := "-" + string(w[k])
				if opt.kind == flag || opt.kind == modeOp {
					if err := apply(opt, name, ""); err != nil {
						return nil, err
					}
					continue
				}
				val := w[k+1:]
				if val == "" {
					if i+1 >= len(argv) {
						return nil, parserErr("argument %s: expected one argument", name)
					}
					i++
					val = argv[i]
				}
				if err := apply(opt, name, val); err != nil {
					return nil, err
				}
				break
			}
		default:
			o.Args = append(o.Args, w)
		}
	}
	if o.Mode == "" && len(o.Args) > 0 {
		if m, ok := legacyModes[o.Args[0]]; ok {
			o.Mode = m
			o.Args = o.Args[1:]
		}
	}
	if len(o.Scrub) > 0 {
		o.Mode = ModeClean
	}
	if o.Mode == "" {
		o.Mode = ModeRebuild
	}
	return o, nil
}

// Supported tells whether thinroot runs the mode; the error says what it
// runs instead.
func (o *Options) Supported() error {
	switch o.Mode {
	case ModeRebuild, ModeBuildSRPM, ModeInit, ModeChroot, ModeShell, ModeInstall, ModeCopyIn, ModeCopyOut, ModeClean, ModePrintRoot:
		return nil
	}
	return &Error{ExitBadCmdline, fmt.Sprintf("mode --%s is not supported by thinroot mock; it runs --init, --rebuild, --buildsrpm, "+
		"--chroot, --shell, --install, --copyin, --copyout, --scrub, --clean and --print-root-path (thinroot(1) lists the rest of its commands)", o.Mode)}
}

// Check applies mock's checks of a mode's arguments: what mock refuses
// with BadCmdline (5) and what its mode code refuses with 50.
func (o *Options) Check() error {
	if err := o.Supported(); err != nil {
		return err
	}
	n := len(o.Args)
	switch o.Mode {
	case ModeRebuild:
		if n == 0 && o.Spec == "" {
			return &Error{ExitModeArgs, "--rebuild needs a source RPM, or --spec (and --sources) to build one from"}
		}
		if n > 1 && o.ResultDir == "" {
			return &Error{ExitBadCmdline, fmt.Sprintf("%d source RPMs given (%s) without --resultdir: give one SRPM, or --resultdir for several",
				n, strings.Join(o.Args, " "))}
		}
		if o.Sources != "" && o.Spec == "" {
			return &Error{ExitBadCmdline, "--sources goes with --spec"}
		}
	case ModeBuildSRPM:
		if o.Spec == "" {
			return &Error{ExitBadCmdline, "--buildsrpm needs --spec (and --sources for a spec with local sources)"}
		}
		if n > 0 {
			return &Error{ExitBadCmdline, fmt.Sprintf("--buildsrpm takes no arguments, got %s", strings.Join(o.Args, " "))}
		}
	case ModeChroot:
		if n == 0 {
			return &Error{ExitModeArgs, "--chroot needs a command: one word runs through the shell, several are run as they are"}
		}
	case ModeInstall:
		if n == 0 {
			return &Error{ExitModeArgs, "--install needs the packages to install"}
		}
	case ModeCopyIn, ModeCopyOut:
		if n < 2 {
			return &Error{ExitModeArgs, fmt.Sprintf("--%s needs SOURCE... DESTINATION", o.Mode)}
		}
	}
	if o.UniqueExt != "" && strings.ContainsAny(o.UniqueExt, "/\x00") {
		return &Error{ExitBadCmdline, fmt.Sprintf("--uniqueext %q holds a '/'", o.UniqueExt)}
	}
	return nil
}

// Command is the argv --chroot runs: one word through the shell (sh -c),
// several as they are.
func (o *Options) Command() []string {
	if len(o.Args) == 1 {
		return []string{"/bin/sh", "-c", o.Args[0]}
	}
	return append([]string(nil), o.Args...)
}

// ShellCommand is the argv --shell runs: the arguments joined with
// spaces through the shell; nil for an interactive shell.
func (o *Options) ShellCommand() []string {
	if len(o.Args) == 0 {
		return nil
	}
	return []string{"/bin/sh", "-c", strings.Join(o.Args, " ")}
}

// ConfigName is how -r is looked up: a name ending in .cfg is a path
// (made absolute against cwd), any other name is NAME.cfg under the
// config dir, '/' included (koji/NAME is configdir/koji/NAME.cfg). The
// default config is "default", as mock's.
func (o *Options) ConfigName(cwd string) string {
	r := o.Root
	if r == "" {
		return "default"
	}
	if strings.HasSuffix(r, ".cfg") && !filepath.IsAbs(r) {
		return filepath.Join(cwd, r)
	}
	return r
}

// BindMounts are the (host, chroot) pairs of --plugin-option
// bind_mount:dirs=..., in order, parsed from mock's Python literal.
func (o *Options) BindMounts() ([][2]string, error) {
	var out [][2]string
	for _, p := range o.PluginOptions {
		plugin, kv, ok := strings.Cut(p, ":")
		if !ok {
			return nil, &Error{ExitBadCmdline, fmt.Sprintf("--plugin-option %q: want PLUGIN:KEY=VALUE", p)}
		}
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, &Error{ExitBadCmdline, fmt.Sprintf("--plugin-option %q: want PLUGIN:KEY=VALUE", p)}
		}
		if plugin != "bind_mount" || key != "dirs" {
			continue
		}
		pairs, err := parsePairs(val)
		if err != nil {
			return nil, &Error{ExitBadCmdline, fmt.Sprintf("--plugin-option %s: %v; want a Python list or tuple of (host, chroot) string pairs", p, err)}
		}
		out = append(out, pairs...)
	}
	return out, nil
}
