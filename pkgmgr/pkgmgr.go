// Package pkgmgr drives the host's package manager (dnf4, dnf5 or yum) on
// a buildroot the way mock does without a bootstrap chroot
// (use_bootstrap = False): the config's rendered dnf.conf, --installroot,
// --releasever, mock's common options, and the commands mock runs
// (install, builddep, remove, update).
//
// It also does what the host needs for that to work and stay contained:
//
//   - HOME is a private directory whose .rpmmacros sets what mock's
//     installation-time macros file sets (%_netsharedpath /proc:/sys) and,
//     on hosts whose rpm keeps its database under HOME (Debian's keeps it
//     in ~/.rpmdb), %_dbpath /var/lib/rpm, so the root's database lands
//     where rpm inside the root looks for it. The host's rpm queries of a
//     root use the same HOME.
//   - dnf4 and yum run with every plugin disabled and only builddep
//     enabled for builddep: a host's plugins write into the host (Debian
//     enables "local", which copies every downloaded package into
//     /var/lib/dnf/plugins/local and offers it to every later run as a
//     repository). A plugin the config disables is never enabled.
//   - downloaded packages and metadata go to a per-config cache directory
//     (--setopt=cachedir=, keepcache), and one run at a time uses it: the
//     cache lock is held only around a run.
//   - each run happens in the sandbox's namespaces with the root's /proc,
//     /sys and /dev mounted for its scriptlets; nothing stays mounted, also
//     when the run is killed.
//
// Failures come back as *Error, which names the packages no repository
// provides or the repository whose metadata could not be loaded; mock
// exits 30 for them.
package pkgmgr

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/thinroot/thinroot/mockcfg"
)

// Kinds of package manager, as mock names them.
const (
	DNF4 = "dnf4"
	DNF5 = "dnf5"
	Yum  = "yum"
)

// ExitCode is mock's exit status for a failed package-manager run
// (YumError).
const ExitCode = 30

// ErrUnsupported says a config's package manager is not one pkgmgr drives.
var ErrUnsupported = errors.New("package manager not supported (want dnf, dnf4, dnf5 or yum)")

// Spec is how to run a config's package manager: everything mock reads
// from the config for it, rendered.
type Spec struct {
	Root string // the config's root, for messages and the cache
	// Kind is dnf4, dnf5 or yum; Wanted is what the config asked for when
	// the host lacked it and mock's fallback order picked Kind instead.
	Kind   string
	Wanted string `json:",omitempty"`
	// Command is <pm>_command; Builddep the head of a builddep
	// invocation ([Command, "builddep"], yum-builddep, or the config's
	// <pm>_builddep_command).
	Command  string
	Builddep []string
	// CommonOpts is <pm>_common_opts; BuilddepOpts <pm>_builddep_opts;
	// AvoidOpts <pm>_avoid_opts (options left out of a sub-command).
	CommonOpts   []string
	BuilddepOpts []string            `json:",omitempty"`
	AvoidOpts    map[string][]string `json:",omitempty"`
	// DisablePlugins is <pm>_disable_plugins.
	DisablePlugins []string `json:",omitempty"`
	Forcearch      string   `json:",omitempty"`
	Releasever     string
	TargetArch     string
	// Online false adds -C (cache only), as mock's config_opts['online'].
	Online bool
	// Conf is the rendered dnf.conf (yum.conf for yum).
	Conf string
	// Vars are dnf_vars, written to <root>/etc/dnf/vars.
	Vars map[string]string `json:",omitempty"`
	// SetupCmd is chroot_setup_cmd as mock splits it; AdditionalPackages
	// chroot_additional_packages.
	SetupCmd           []string
	AdditionalPackages []string `json:",omitempty"`
	// CacheDir holds this config's downloaded packages and metadata, the
	// private HOME and the lock; Cache() has the layout.
	CacheDir string
}

// DefaultCacheRoot is thinroot's cache directory unless told otherwise.
const DefaultCacheRoot = "/var/cache/thinroot"

// mockName maps package_manager to the name mock's option keys use.
func mockName(pm string) string {
	switch pm {
	case "dnf", "dnf4":
		return DNF4
	case DNF5, Yum:
		return pm
	}
	return ""
}

// fallbacks is mock's order of alternatives when the host lacks the
// package manager a config wants.
var fallbacks = map[string][]string{
	DNF4: {DNF4, DNF5, Yum},
	Yum:  {Yum, DNF4, DNF5},
	DNF5: {DNF5, DNF4, Yum},
}

// hostHas tells whether the host has the package manager kind at
// command, as mock checks it: the file exists and its real path names it.
var hostHas = func(kind, command string) bool {
	fi, err := os.Stat(command)
	if err != nil || fi.IsDir() {
		return false
	}
	real, err := filepath.EvalSymlinks(command)
	if err != nil {
		return false
	}
	name := kind
	if kind == DNF4 {
		name = "dnf"
	}
	return strings.Contains(real, name)
}

// FromConfig reads a config's package manager settings. cacheRoot is
// thinroot's cache directory; the config's cache is a directory of it
// named after the root.
// It is long because it reads the package manager's keys in the order
// mock resolves them (command, fallbacks, options), each next to its default.
func FromConfig(cfg *mockcfg.Config, st mockcfg.Settings, cacheRoot string) (*Spec, error) {
	wanted := mockName(st.PackageManager)
	if wanted == "" {
		return nil, fmt.Errorf("config %s: package_manager %q: %w", st.Root, st.PackageManager, ErrUnsupported)
	}
	if cacheRoot == "" {
		cacheRoot = DefaultCacheRoot
	}
	s := &Spec{Root: st.Root, Releasever: st.Releasever, TargetArch: st.TargetArch, Conf: st.DnfConf,
		SetupCmd: st.ChrootSetupCmd, CacheDir: filepath.Join(cacheRoot, st.Root), Online: true}
	if s.Releasever == "None" {
		s.Releasever = ""
	}
	kind := wanted
	for _, k := range fallbacks[wanted] {
		cmd, _, _ := cfg.String(k + "_command")
		if cmd != "" && hostHas(k, cmd) {
			kind = k
			break
		}
	}
	if kind != wanted {
		s.Wanted = wanted
	}
	s.Kind = kind
	var err error
	str := func(key string) string {
		v, _, e := cfg.String(key)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	strs := func(key ...string) []string {
		v, _, e := cfg.Strings(key...)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	s.Command = str(kind + "_command")
	if s.Command == "" {
		return nil, fmt.Errorf("config %s: no %s_command", st.Root, kind)
	}
	s.CommonOpts = strs(kind + "_common_opts")
	s.BuilddepOpts = strs(kind + "_builddep_opts")
	s.DisablePlugins = strs(kind + "_disable_plugins")
	s.Builddep = []string{s.Command, "builddep"}
	if kind == Yum {
		s.Builddep = []string{str("yum_builddep_command")}
	} else if o := str(kind + "_builddep_command"); o != "" {
		s.Builddep = []string{o, "builddep"}
	}
	if v, ok := cfg.Get(kind + "_avoid_opts"); ok {
		if d, ok := v.(mockcfg.Dict); ok {
			s.AvoidOpts = map[string][]string{}
			for k := range d {
				s.AvoidOpts[k] = strs(kind+"_avoid_opts", k)
			}
		}
	}
	s.Forcearch = str("forcearch")
	if online, ok := cfg.Get("online"); ok && online == false {
		s.Online = false
	}
	if v, ok := cfg.Get("dnf_vars"); ok {
		if d, ok := v.(mockcfg.Dict); ok && len(d) > 0 {
			s.Vars = map[string]string{}
			for k, x := range d {
				s.Vars[k] = fmt.Sprint(x)
			}
		}
	}
	switch v, _ := cfg.Get("chroot_additional_packages"); x := v.(type) {
	case string:
		s.AdditionalPackages = strings.Fields(x)
	case nil:
	default:
		s.AdditionalPackages = strs("chroot_additional_packages")
	}
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(s.Conf) == "" {
		return nil, fmt.Errorf("config %s: no dnf.conf", st.Root)
	}
	return s, nil
}

// Cache is the layout of a config's cache directory.
type Cache struct {
	Dir  string // the package manager's cachedir (packages, metadata)
	Home string // the private HOME: .rpmmacros
	Conf string // the dnf.conf the package manager reads (-c)
	Lock string // held around every run
}

// Cache returns the layout of the spec's cache directory.
func (s *Spec) Cache() Cache {
	return Cache{
		Dir:  filepath.Join(s.CacheDir, s.Kind),
		Home: filepath.Join(s.CacheDir, "home"),
		Conf: filepath.Join(s.CacheDir, "dnf.conf"),
		Lock: filepath.Join(s.CacheDir, "lock"),
	}
}

// pluginFlags are dnf4's and yum's plugin options for sub-command cmd:
// every plugin off, builddep on for builddep unless the config disables
// it. dnf5 keeps mock's: the config's list.
func (s *Spec) pluginFlags(cmd string) []string {
	if s.Kind == DNF5 {
		var out []string
		for _, p := range s.DisablePlugins {
			out = append(out, "--disableplugin="+p)
		}
		return out
	}
	out := []string{"--disableplugin=*"}
	if cmd == "builddep" && s.Kind != Yum && !contains(s.DisablePlugins, "builddep") {
		out = append(out, "--enableplugin=builddep")
	}
	return out
}

// Argv is the invocation of sub-command args[0] with args[1:] on root,
// in mock's order: the command (or builddep's), --installroot,
// --releasever, -C when offline, thinroot's own options (the config file,
// the cache, the plugins, -y), then the common options and the
// arguments (dnf5: the arguments first).
func (s *Spec) Argv(root string, args ...string) []string {
	if len(args) == 0 {
		return nil
	}
	cmd := args[0]
	var inv []string
	opts := s.adjust(cmd, append([]string(nil), s.CommonOpts...))
	if s.Forcearch != "" {
		opts = append(opts, "--forcearch", s.Forcearch)
	}
	if cmd == "builddep" {
		inv = append(inv, s.Builddep...)
		opts = append(opts, s.BuilddepOpts...)
		args = args[1:]
	} else {
		inv = []string{s.Command}
	}
	inv = append(inv, "--installroot", root)
	if s.Releasever != "" {
		inv = append(inv, "--releasever", s.Releasever)
	}
	if !s.Online {
		inv = append(inv, "-C")
	}
	c := s.Cache()
	inv = append(inv, "-c", c.Conf, "--setopt=cachedir="+c.Dir, "--setopt=keepcache=1")
	inv = append(inv, s.pluginFlags(cmd)...)
	inv = append(inv, "-y")
	if s.Kind == DNF5 {
		return append(append(inv, args...), opts...)
	}
	return append(append(inv, opts...), args...)
}

// adjust leaves out the options the config avoids for a sub-command.
func (s *Spec) adjust(cmd string, opts []string) []string {
	avoid := s.AvoidOpts[cmd]
	if len(avoid) == 0 {
		return opts
	}
	out := opts[:0]
	for _, o := range opts {
		if !contains(avoid, o) {
			out = append(out, o)
		}
	}
	return out
}

// SetupArgv is the chroot setup (mock's "installing minimal buildroot"):
// chroot_setup_cmd, then chroot_additional_packages as an install.
func (s *Spec) SetupArgv() [][]string {
	var out [][]string
	if len(s.SetupCmd) > 0 {
		out = append(out, s.SetupCmd)
	}
	if len(s.AdditionalPackages) > 0 {
		out = append(out, append([]string{"install"}, s.AdditionalPackages...))
	}
	return out
}

// WriteRootConfig writes the package manager's configuration into root
// as mock does: dnf.conf at etc/dnf/dnf.conf (yum: etc/yum/yum.conf too),
// dnf_vars under etc/dnf/vars, and no etc/yum.repos.d left from
// elsewhere. Users of the root's own dnf then see the config's
// repositories.
func (s *Spec) WriteRootConfig(root string) error {
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	if err := os.RemoveAll(in("etc", "yum.repos.d")); err != nil {
		return err
	}
	for _, d := range []string{in("etc", "yum.repos.d"), in("etc", "dnf", "vars")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	paths := []string{in("etc", "dnf", "dnf.conf")}
	if s.Kind == Yum {
		if err := os.MkdirAll(in("etc", "yum"), 0o755); err != nil {
			return err
		}
		paths = append(paths, in("etc", "yum", "yum.conf"))
	}
	for _, p := range paths {
		if err := writeIfChanged(p, []byte(s.Conf), 0o644); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(s.Vars))
	for k := range s.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(k, "/\x00") || k == "" || k == "." || k == ".." {
			return fmt.Errorf("dnf_vars: bad name %q", k)
		}
		if err := os.WriteFile(in("etc", "dnf", "vars", k), []byte(s.Vars[k]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeIfChanged writes data to path unless it already holds exactly that
// (with mode), through a temporary file of its own renamed into place, so
// writers racing on one path each leave a whole file.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == mode {
		if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// LookPath reports whether the host has the spec's command.
func (s *Spec) LookPath() error {
	if _, err := exec.LookPath(s.Command); err != nil {
		return fmt.Errorf("%s: %w (the host's package manager runs with --installroot)", s.Command, err)
	}
	return nil
}
