package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/internal/size"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/btrfs"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvm2"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/pkgmgr"
)

// Environment variables thinroot reads. TestManPageCoversCLI checks that
// thinroot(1) documents each.
var envVars = []struct{ name, meaning string }{
	{"THINROOT_CONFIG_DIR", "the config dir (--config-dir)"},
	{"THINROOT_STATE_DIR", "the state directory (--state-dir)"},
	{"THINROOT_BASEDIR", "mock's basedir, overriding the configs' (--basedir)"},
	{"THINROOT_LOG_LEVEL", "the log level (--log-level)"},
	{"THINROOT_LOG_FORMAT", "the log format (--log-format)"},
	{"THINROOT_SOCKET", "the daemon's API socket (--socket)"},
	{"THINROOT_CGROUP_PARENT", "the cgroup that holds builds' and shells' cgroups (--cgroup-parent)"},
	{"COLUMNS", "the width help is wrapped to (default: the terminal's, else 80)"},
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
	backends   = []string{file.Kind, btrfs.Kind, lvm2.Kind}
)

// globals are the flags every command takes, before or after its name.
type globals struct {
	configDir string
	stateDir  string
	basedir   string
	logLevel  string
	logFormat string
	cacheDir  string
}

// newGlobals takes the defaults from the environment, refusing a value
// the flag would refuse.
func newGlobals() (*globals, error) {
	g := &globals{
		configDir: envOr("THINROOT_CONFIG_DIR", mockcfg.DefaultConfigDir),
		stateDir:  envOr("THINROOT_STATE_DIR", lvm.DefaultStateDir),
		basedir:   envOr("THINROOT_BASEDIR", ""),
		logLevel:  strings.ToLower(os.Getenv("THINROOT_LOG_LEVEL")),
		logFormat: strings.ToLower(envOr("THINROOT_LOG_FORMAT", "text")),
		cacheDir:  envOr("THINROOT_CACHE_DIR", pkgmgr.DefaultCacheRoot),
	}
	if g.logLevel == "warning" {
		g.logLevel = "warn"
	}
	if g.logLevel != "" && !oneOf(g.logLevel, logLevels) {
		return g, usageErr("THINROOT_LOG_LEVEL=%s: want %s", os.Getenv("THINROOT_LOG_LEVEL"), orList(logLevels))
	}
	if !oneOf(g.logFormat, logFormats) {
		return g, usageErr("THINROOT_LOG_FORMAT=%s: want %s", os.Getenv("THINROOT_LOG_FORMAT"), orList(logFormats))
	}
	if g.basedir != "" && !strings.HasPrefix(g.basedir, "/") {
		return g, usageErr("THINROOT_BASEDIR=%s: want an absolute path", g.basedir)
	}
	if !strings.HasPrefix(g.cacheDir, "/") {
		return g, usageErr("THINROOT_CACHE_DIR=%s: want an absolute path", g.cacheDir)
	}
	return g, nil
}

// register adds the global flags to fs with the current values as their
// defaults, so flags given before the command survive its own parse.
func (g *globals) register(fs *pflag.FlagSet) {
	fs.StringVar(&g.configDir, "config-dir", g.configDir, "mock's config directory to read configs from [$THINROOT_CONFIG_DIR]")
	fs.StringVar(&g.stateDir, "state-dir", g.stateDir, "thinroot's state directory: file pools, locks, build records [$THINROOT_STATE_DIR]")
	fs.Var(&absPath{&g.basedir}, "basedir", "mock's basedir, overriding the configs': mount points, snapinfo records, lock files [$THINROOT_BASEDIR]")
	fs.Var(&enumValue{&g.logLevel, logLevels}, "log-level", "log level: debug, info, warn or error (default: info for serve and mount, warn for the others) [$THINROOT_LOG_LEVEL]")
	fs.Var(&enumValue{&g.logFormat, logFormats}, "log-format", "log format on standard error: text or json [$THINROOT_LOG_FORMAT]")
	fs.Var(&absPath{&g.cacheDir}, "cache-dir", "thinroot's cache: the package manager's downloads, per config [$THINROOT_CACHE_DIR]")
}

// globalFlagNames lists the global flags, for help.
func globalFlagNames() []string {
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	(&globals{}).register(fs)
	var out []string
	fs.VisitAll(func(f *pflag.Flag) { out = append(out, "--"+f.Name) })
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Shared flag sets (command.uses).

// adHocFlags define a config on the command line, for a name that has no
// config file: thinroot's equivalent of a config file's lvm_root_opts and
// thinroot keys. The key each one stands for is in adHocKeys.
func adHocFlags(fs *pflag.FlagSet) {
	fs.Bool("ad-hoc", false, "define CONFIG from these flags; refused for a name that has a config file")
	fs.Var(newEnum(file.Kind, backends), "backend", "backend of an ad hoc config: file, btrfs or lvm2")
	fs.String("volume-group", "", "volume group of an lvm2 pool (lvm_root_opts.volume_group)")
	fs.String("pool", lvm.DefaultPool, "thin pool (lvm_root_opts.pool_name)")
	fs.Var(newSize("8G"), "size", "virtual size of the volumes, and of a new pool: 8G, 512M, 20GiB... (lvm_root_opts.size)")
	fs.Var(newSize(""), "pool-size", "size of a new pool image, when other than --size (thinroot.pool_size)")
	fs.String("pool-dir", "", "use this directory (XFS with reflink, or btrfs) as the file pool (thinroot.pool_dir)")
	fs.String("filesystem", lvm.DefaultFilesystem, "filesystem of the volumes (lvm_root_opts.filesystem)")
	fs.String("mkfs-command", "", "mkfs command (default mkfs.FILESYSTEM; lvm_root_opts.mkfs_command)")
	fs.StringArray("mkfs-arg", nil, "argument for mkfs, repeatable (lvm_root_opts.mkfs_args)")
	fs.String("mount-options", "", "mount options of workdirs (lvm_root_opts.mount_options)")
	fs.Bool("no-check-size", false, "only warn above the refuse threshold (lvm_root_opts.check_size = False)")
	fs.StringArray("bootstrap", nil, "a word of the bootstrap argv, repeatable; or give the argv after -- (thinroot.bootstrap)")
}

// adHocKeys name the config key each ad hoc flag would set.
var adHocKeys = map[string]string{
	"backend": "thinroot.backend", "volume-group": "lvm_root_opts.volume_group", "pool": "lvm_root_opts.pool_name",
	"size": "lvm_root_opts.size", "pool-size": "thinroot.pool_size", "pool-dir": "thinroot.pool_dir",
	"filesystem": "lvm_root_opts.filesystem", "mkfs-command": "lvm_root_opts.mkfs_command", "mkfs-arg": "lvm_root_opts.mkfs_args",
	"mount-options": "lvm_root_opts.mount_options", "no-check-size": "lvm_root_opts.check_size", "bootstrap": "thinroot.bootstrap",
}

// adHocFlagNames lists the flags that define a config (not --ad-hoc).
func adHocFlagNames() []string {
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	adHocFlags(fs)
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "ad-hoc" {
			out = append(out, f.Name)
		}
	})
	return out
}

func thresholdFlags(fs *pflag.FlagSet) {
	fs.Var(newPercent(lvm.DefaultWarnPercent), "warn-percent", "pool usage that draws a warning, for a pool made now (above 0, at most 100)")
	fs.Var(newPercent(lvm.DefaultRefusePercent), "refuse-percent", "pool usage above which new volumes are refused, for a pool made now (above 0, at most 100)")
}

func socketFlag(fs *pflag.FlagSet) {
	fs.String("socket", envOr("THINROOT_SOCKET", DefaultSocket), "the daemon's API socket [$THINROOT_SOCKET]")
}

// addFlags registers everything a command takes, its own flags first.
func (c *command) addFlags(fs *pflag.FlagSet, g *globals) {
	if c.flags != nil {
		c.flags(fs)
	}
	if c.has(useConfig) && fs.Lookup("config") == nil {
		fs.StringP("config", "r", "", "the config, instead of the CONFIG argument (mock's -r)")
	}
	if c.has(useConfigs) && fs.Lookup("config") == nil {
		fs.StringArrayP("config", "r", nil, "serve config NAME (repeatable; default: every config in the config dir); configs with volumes show anyway")
	}
	if c.has(useUniqueExt) && fs.Lookup("uniqueext") == nil {
		fs.String("uniqueext", "", "the unique-ext to work on (mock's --uniqueext; default: the config's, else head)")
	}
	if c.has(useJSON) && fs.Lookup("json") == nil {
		fs.Bool("json", false, "print JSON (thinroot(1), JSON OUTPUT)")
	}
	if c.has(useDaemon) && fs.Lookup("socket") == nil {
		socketFlag(fs)
	}
	if c.has(useThresholds) {
		thresholdFlags(fs)
	}
	if c.has(useTree) {
		treeFlags(fs)
	}
	if c.has(useAdHoc) {
		adHocFlags(fs)
	}
	if g != nil {
		g.register(fs)
	}
	fs.BoolP("help", "h", false, "show this help")
}

// checkFlags refuses flag combinations no single value shows wrong.
func checkFlags(fs *pflag.FlagSet) error {
	if w, r := fs.Lookup("warn-percent"), fs.Lookup("refuse-percent"); w != nil && r != nil {
		wv, rv := w.Value.(*percentValue).v, r.Value.(*percentValue).v
		if wv > rv {
			return usageErr("--warn-percent %s%s is above --refuse-percent %s%s; the warning comes first: give a warn value at or below the refuse value",
				fmtNum(wv), defaultNote(w), fmtNum(rv), defaultNote(r))
		}
	}
	return nil
}

func defaultNote(f *pflag.Flag) string {
	if f.Changed {
		return ""
	}
	return " (the default)"
}

// Checked flag values: each refuses a bad value while parsing, saying what
// it wants; parseError puts the flag's name in front.

// enumValue is one of a fixed set of words.
type enumValue struct {
	v       *string
	allowed []string
}

func newEnum(def string, allowed []string) *enumValue { return &enumValue{v: &def, allowed: allowed} }

func (e *enumValue) String() string { return *e.v }
func (e *enumValue) Type() string   { return "WORD" }
func (e *enumValue) Set(s string) error {
	if s == "warning" && oneOf("warn", e.allowed) {
		s = "warn"
	}
	if !oneOf(s, e.allowed) {
		return fmt.Errorf("want %s", orList(e.allowed))
	}
	*e.v = s
	return nil
}

// sizeValue is a size like 8G; it must be above zero.
type sizeValue struct {
	s string
	n int64
}

func newSize(def string) *sizeValue {
	v := &sizeValue{s: def}
	if def != "" {
		v.n, _ = size.Parse(def)
	}
	return v
}

func (v *sizeValue) String() string { return v.s }
func (v *sizeValue) Type() string   { return "SIZE" }
func (v *sizeValue) Set(s string) error {
	n, err := size.Parse(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a size above zero: a number with a unit such as 8G, 512M or 20GiB (LVM's units: G is GiB)")
	}
	v.s, v.n = s, n
	return nil
}

// percentValue is a percentage above 0, at most 100.
type percentValue struct{ v float64 }

func newPercent(def float64) *percentValue { return &percentValue{def} }

func (p *percentValue) String() string { return fmtNum(p.v) }
func (p *percentValue) Type() string   { return "PERCENT" }
func (p *percentValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || f <= 0 || f > 100 {
		return fmt.Errorf("want a percentage above 0 and at most 100")
	}
	p.v = f
	return nil
}

// countValue is a whole number of at least min (0 stays the default:
// "not given").
type countValue struct {
	v   int
	min int
	def string // what the zero default means, for the message
}

func (c *countValue) String() string { return strconv.Itoa(c.v) }
func (c *countValue) Type() string   { return "N" }
func (c *countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < c.min {
		msg := fmt.Sprintf("want a whole number of %d or more", c.min)
		if c.def != "" {
			msg += " (leave it out for " + c.def + ")"
		}
		return fmt.Errorf("%s", msg)
	}
	c.v = n
	return nil
}

// durationValue is a duration like 90s or 2h; zero only when allowZero.
type durationValue struct {
	v         time.Duration
	allowZero string // what 0 means, "" when 0 is refused
}

func (d *durationValue) String() string { return d.v.String() }
func (d *durationValue) Type() string   { return "DURATION" }
func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err == nil && v < 0 {
		err = fmt.Errorf("negative")
	}
	if err == nil && v == 0 && d.allowZero == "" {
		err = fmt.Errorf("zero")
	}
	if err != nil {
		if d.allowZero != "" {
			return fmt.Errorf("want a duration of 0 or more such as 90s, 30m or 2h (0: %s)", d.allowZero)
		}
		return fmt.Errorf("want a duration above zero such as 500ms, 2s or 1m")
	}
	d.v = v
	return nil
}

// absPath is an absolute path ("" stays unset).
type absPath struct{ v *string }

func (p *absPath) String() string { return *p.v }
func (p *absPath) Type() string   { return "DIR" }
func (p *absPath) Set(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("want an absolute path")
	}
	*p.v = s
	return nil
}

// Reading flags.

func getString(fs *pflag.FlagSet, name string) string {
	f := fs.Lookup(name)
	if f == nil {
		return ""
	}
	if sa, ok := f.Value.(pflag.SliceValue); ok {
		if l := sa.GetSlice(); len(l) > 0 {
			return l[0]
		}
		return ""
	}
	return f.Value.String()
}

func getBool(fs *pflag.FlagSet, name string) bool {
	v, _ := fs.GetBool(name)
	return v
}

func getStrings(fs *pflag.FlagSet, name string) []string {
	v, _ := fs.GetStringArray(name)
	return v
}

func getSize(fs *pflag.FlagSet, name string) int64 {
	if f := fs.Lookup(name); f != nil {
		if v, ok := f.Value.(*sizeValue); ok {
			return v.n
		}
	}
	return 0
}

func getPercent(fs *pflag.FlagSet, name string) float64 {
	if f := fs.Lookup(name); f != nil {
		if v, ok := f.Value.(*percentValue); ok {
			return v.v
		}
	}
	return 0
}

func getDuration(fs *pflag.FlagSet, name string) time.Duration {
	if f := fs.Lookup(name); f != nil {
		if v, ok := f.Value.(*durationValue); ok {
			return v.v
		}
	}
	return 0
}

func getCount(fs *pflag.FlagSet, name string) int {
	if f := fs.Lookup(name); f != nil {
		if v, ok := f.Value.(*countValue); ok {
			return v.v
		}
	}
	return 0
}

func changed(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed
}

// parseError rewrites pflag's messages: the flag first, then what it
// wants, and a suggestion for an unknown flag.
func parseError(c *command, fs *pflag.FlagSet, err error) error {
	s := err.Error()
	if m := reInvalid.FindStringSubmatch(s); m != nil {
		name := m[2]
		if i := strings.Index(name, "--"); i >= 0 {
			name = name[i:]
		}
		reason := m[3]
		if i := strings.Index(reason, "strconv."); i >= 0 {
			reason = "not a valid value"
		}
		return usageErr("%s %s: %s", name, quoteIfNeeded(m[1]), reason)
	}
	if m := reUnknown.FindStringSubmatch(s); m != nil {
		return unknownFlag(c, fs, m[1])
	}
	if m := reShort.FindStringSubmatch(s); m != nil {
		err := unknownFlag(c, fs, "-"+m[1])
		if m[2] != "-"+m[1] {
			err.msg = strings.Replace(err.msg, "-"+m[1], "-"+m[1]+" (in "+m[2]+")", 1)
		}
		return err
	}
	if m := reNeedsArg.FindStringSubmatch(s); m != nil {
		return usageErr("%s needs a value (thinroot %s --help)", m[1], cmdName(c))
	}
	return usageErr("%s (thinroot %s --help)", s, cmdName(c))
}

var (
	reInvalid  = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: (.*)$`)
	reUnknown  = regexp.MustCompile(`^unknown flag: (--\S+)`)
	reShort    = regexp.MustCompile(`^unknown shorthand flag: '(.)' in (-\S+)`)
	reNeedsArg = regexp.MustCompile(`^flag needs an argument: '?(-{1,2}[^' ]+)'?`)
)

func cmdName(c *command) string {
	if c == nil {
		return ""
	}
	return c.name
}

// unknownFlag says which command does take the flag, or which flag was
// probably meant.
func unknownFlag(c *command, fs *pflag.FlagSet, flag string) *cliError {
	name := strings.TrimLeft(flag, "-")
	where := "thinroot"
	if c != nil {
		where = "thinroot " + c.name
	}
	var others []string
	for _, o := range visible() {
		if o == c {
			continue
		}
		ofs := pflag.NewFlagSet("", pflag.ContinueOnError)
		o.addFlags(ofs, nil)
		if f := ofs.Lookup(name); f != nil && len(flag) > 2 && flag[1] == '-' {
			others = append(others, o.name)
		} else if len(name) == 1 && ofs.ShorthandLookup(name) != nil {
			others = append(others, o.name)
		}
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	help := fmt.Sprintf("%s --help lists its flags", where)
	if c == nil && len(others) > 0 {
		return usageErr("%s is not a global flag: give it after the command (it is a flag of %s)", flag, orList(quoteAll(others)))
	}
	if len(others) > 0 {
		return usageErr("%s does not apply here: it is a flag of %s (%s)", flag, orList(quoteAll(others)), help)
	}
	if s := suggest(name, names); s != "" {
		return usageErr("unknown flag %s; did you mean --%s? (%s)", flag, s, help)
	}
	return usageErr("unknown flag %s (%s)", flag, help)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "thinroot " + s
	}
	return out
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// andList is "a, b and c".
func andList(ss []string) string {
	if len(ss) < 2 {
		return strings.Join(ss, "")
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " and " + ss[len(ss)-1]
}

// didYouMean is rest, after "did you mean "x"? " when word is close to
// one of names.
func didYouMean(word string, names []string, rest string) string {
	if s := suggest(word, names); s != "" {
		return fmt.Sprintf("did you mean %q? %s", s, capitalize(rest))
	}
	return rest
}

// orList is "a, b or c".
func orList(ss []string) string {
	switch len(ss) {
	case 0:
		return ""
	case 1:
		return ss[0]
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " or " + ss[len(ss)-1]
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"'") {
		return strconv.Quote(s)
	}
	return s
}
