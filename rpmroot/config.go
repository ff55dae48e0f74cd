// Package rpmroot makes and prepares RPM buildroots the way mock does:
// the bootstrap of a dnf/yum config without a bootstrap chroot (the
// package manager from the host, the build user and group, the config's
// files and macros), the build directories and macros file of the build
// user, and mock's log files (state.log, root.log, build.log, hw_info.log,
// installed_pkgs.log).
//
// The bootstrap runs as a hidden subcommand of the thinroot binary
// (BootstrapMain): the Manager runs a config's bootstrap argv with ROOT
// set to the fresh base volume, and for a dnf config that argv is
// BootstrapArgv's.
package rpmroot

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/pkgmgr"
)

// Defaults for the build user when the config leaves them to the caller:
// mock takes the caller's uid and the mock group's gid; a daemon's build
// for root runs as 1000 (the builder's default), and a host without a
// mock group gets Fedora's gid of it.
const (
	DefaultUID = 1000
	DefaultGID = 135
)

// Config is what mock reads from a config to make and use an RPM
// buildroot.
type Config struct {
	Root string
	PM   *pkgmgr.Spec
	// TargetArch is target_arch; RpmbuildArch is rpmbuild_arch, or
	// target_arch when unset (rpmbuild --target).
	TargetArch, RpmbuildArch string
	// User and Group are chrootuser and chrootgroup; UID and GID
	// chrootuid and chrootgid (defaults above when the config gives root
	// or nothing); Home is chroothome.
	User, Group string
	UID, GID    int
	Home        string
	// Macros are config_opts['macros'], keys with their '%', sorted.
	Macros [][2]string
	// Files are config_opts['files']: path in the root -> content.
	Files map[string]string
	// Environment is config_opts['environment'] as K=V, sorted.
	Environment []string
	// Networking is rpmbuild_networking; UseHostResolv use_host_resolv.
	Networking, UseHostResolv bool
	// Timeout is rpmbuild_timeout (0: none).
	Timeout time.Duration
	// DynamicBuildRequires is dynamic_buildrequires; the loops' limits
	// are dynamic_buildrequires_max_loops and static_buildrequires_max_loops.
	DynamicBuildRequires         bool
	DynamicMaxLoops, StaticLoops int
	// ExtraDirs are extra_chroot_dirs.
	ExtraDirs []string
	// HostShadowUtils is use_host_shadow_utils: the host's groupadd and
	// useradd with shadow_utils_isolation_option (--prefix) make the build
	// user; otherwise the root's own, inside it.
	HostShadowUtils bool
	IsolationOption string
	// HomeCleanupExclude is exclude_from_homedir_cleanup.
	HomeCleanupExclude []string
	// Hostname is config_opts['hostname'] ("" when None).
	Hostname string
	// RPMCommand and RPMBuildCommand are rpm_command and
	// rpmbuild_command, run inside the root.
	RPMCommand, RPMBuildCommand string
	// Version is mock's version, the first line of every log.
	Version string
	// Builddeps are thinroot's builddep snapshot settings.
	Builddeps BuilddepPolicy
}

// BuilddepPolicy bounds a config's builddep snapshots (thinroot's keys
// builddep_snapshots and builddep_pool_percent).
type BuilddepPolicy struct {
	// Max is how many a config keeps (0 turns them off).
	Max int
	// PoolPercent: while the pool's data or metadata use is above it, the
	// least recently used go first.
	PoolPercent float64
}

// Defaults of the builddep snapshot policy.
const (
	DefaultBuilddepMax         = 16
	DefaultBuilddepPoolPercent = 70
)

// FromMock reads an RPM buildroot's settings from a loaded config.
// cacheRoot is thinroot's cache directory.
// It is long because it is one table of mock's keys, each read next to its
// default, with the readers that gather every bad value into one error.
func FromMock(cfg *mockcfg.Config, st mockcfg.Settings, cacheRoot string) (*Config, error) {
	pm, err := pkgmgr.FromConfig(cfg, st, cacheRoot)
	if err != nil {
		return nil, err
	}
	c := &Config{Root: st.Root, PM: pm, TargetArch: st.TargetArch, Version: mockcfg.MockVersion}
	var errs []string
	str := func(dst *string, def string, key ...string) {
		v, ok, err := cfg.String(key...)
		if err != nil {
			errs = append(errs, err.Error())
		}
		if !ok {
			v = def
		}
		*dst = v
	}
	num := func(key string, def int64) int64 {
		v, ok, err := cfg.Int(key)
		if err != nil {
			errs = append(errs, err.Error())
		}
		if !ok {
			return def
		}
		return v
	}
	boolean := func(key string, def bool) bool {
		v, ok := cfg.Bool(key)
		if !ok {
			return def
		}
		return v
	}
	str(&c.RpmbuildArch, st.TargetArch, "rpmbuild_arch")
	if c.RpmbuildArch == "" {
		c.RpmbuildArch = st.TargetArch
	}
	str(&c.User, "mockbuild", "chrootuser")
	str(&c.Group, "mock", "chrootgroup")
	str(&c.Home, "/builddir", "chroothome")
	str(&c.Hostname, "", "hostname")
	str(&c.IsolationOption, "--prefix", "shadow_utils_isolation_option")
	str(&c.RPMCommand, "/bin/rpm", "rpm_command")
	str(&c.RPMBuildCommand, "/usr/bin/rpmbuild", "rpmbuild_command")
	c.UID = int(num("chrootuid", 0))
	if c.UID <= 0 {
		c.UID = DefaultUID
	}
	c.GID = int(num("chrootgid", 0))
	if c.GID <= 0 {
		c.GID = DefaultGID
	}
	c.Networking = boolean("rpmbuild_networking", false)
	c.UseHostResolv = boolean("use_host_resolv", false)
	c.Timeout = time.Duration(num("rpmbuild_timeout", 0)) * time.Second
	c.DynamicBuildRequires = boolean("dynamic_buildrequires", true)
	c.DynamicMaxLoops = int(num("dynamic_buildrequires_max_loops", 10))
	c.StaticLoops = int(num("static_buildrequires_max_loops", 10))
	c.HostShadowUtils = boolean("use_host_shadow_utils", true)
	if xs, _, err := cfg.Strings("extra_chroot_dirs"); err != nil {
		errs = append(errs, err.Error())
	} else {
		c.ExtraDirs = xs
	}
	if xs, ok, err := cfg.Strings("exclude_from_homedir_cleanup"); err != nil {
		errs = append(errs, err.Error())
	} else if ok {
		c.HomeCleanupExclude = xs
	} else {
		c.HomeCleanupExclude = []string{"build/SOURCES", ".bash_history", ".bashrc"}
	}
	if v, ok := cfg.Get("macros"); ok {
		if d, ok := v.(mockcfg.Dict); ok {
			for k, x := range d {
				k = strings.TrimSpace(k)
				if k == "" || x == nil {
					continue
				}
				if len(strings.Fields(k)) != 1 {
					errs = append(errs, fmt.Sprintf("config_opts['macros'][%q]: a macro name is one word", k))
					continue
				}
				if !strings.HasPrefix(k, "%") {
					k = "%" + k // as mock's check_macro_definition
				}
				c.Macros = append(c.Macros, [2]string{k, fmt.Sprint(x)})
			}
		}
	}
	sort.Slice(c.Macros, func(i, j int) bool { return c.Macros[i][0] < c.Macros[j][0] })
	if v, ok := cfg.Get("files"); ok {
		if d, ok := v.(mockcfg.Dict); ok && len(d) > 0 {
			c.Files = map[string]string{}
			for k, x := range d {
				s, isStr := x.(string)
				if !isStr {
					errs = append(errs, fmt.Sprintf("config_opts['files'][%q] is not a string", k))
					continue
				}
				if strings.Contains(k, "..") {
					errs = append(errs, fmt.Sprintf("config_opts['files'][%q]: a path with '..'", k))
					continue
				}
				c.Files[k] = s
			}
		}
	}
	if v, ok := cfg.Get("environment"); ok {
		if d, ok := v.(mockcfg.Dict); ok {
			for k, x := range d {
				c.Environment = append(c.Environment, k+"="+fmt.Sprint(x))
			}
		}
	}
	sort.Strings(c.Environment)
	c.Builddeps = BuilddepPolicy{Max: DefaultBuilddepMax, PoolPercent: DefaultBuilddepPoolPercent}
	if v, ok := cfg.Get("thinroot", "builddep_snapshots"); ok {
		switch x := v.(type) {
		case int64:
			c.Builddeps.Max = int(x)
		case bool:
			if !x {
				c.Builddeps.Max = 0
			}
		default:
			errs = append(errs, "config_opts['thinroot']['builddep_snapshots'] is not a number")
		}
	}
	if v, ok := cfg.Get("thinroot", "builddep_pool_percent"); ok {
		switch x := v.(type) {
		case int64:
			c.Builddeps.PoolPercent = float64(x)
		case float64:
			c.Builddeps.PoolPercent = x
		default:
			errs = append(errs, "config_opts['thinroot']['builddep_pool_percent'] is not a number")
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %s", st.Root, strings.Join(errs, "; "))
	}
	return c, nil
}

// MacrosFile is the build user's .rpmmacros as mock writes it: one
// "name value" line per macro of the config, then extra (-D, --with,
// --without of a build).
func (c *Config) MacrosFile(extra [][2]string) string {
	var b strings.Builder
	for _, m := range append(append([][2]string(nil), c.Macros...), extra...) {
		fmt.Fprintf(&b, "%s %s\n", m[0], m[1])
	}
	return b.String()
}

// BuildMacros turns a build's -D "NAME VALUE", --with X and --without X
// into macros, as mock does (--with X is %_with_X --with-X).
func BuildMacros(defines, with, without []string) ([][2]string, error) {
	var out [][2]string
	for _, d := range defines {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, "\n\t ") {
			return nil, fmt.Errorf("define %q: want \"NAME VALUE\"", d)
		}
		if !strings.HasPrefix(name, "%") {
			name = "%" + name
		}
		if strings.Contains(value, "\n") {
			return nil, fmt.Errorf("define %q: a value of one line", d)
		}
		out = append(out, [2]string{name, strings.TrimSpace(value)})
	}
	for _, list := range []struct {
		names []string
		kind  string
	}{{with, "with"}, {without, "without"}} {
		for _, w := range list.names {
			if w == "" || strings.ContainsAny(w, " \t\n%{}") {
				return nil, fmt.Errorf("--%s %q: want a plain name", list.kind, w)
			}
			out = append(out, [2]string{"%_" + list.kind + "_" + w, "--" + list.kind + "-" + w})
		}
	}
	return out, nil
}
