package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/size"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvm2"
	"github.com/thinroot/thinroot/mockcfg"
)

// Configs come from mock's config files (mockcfg reads them as mock does).
// A name that has no config file can be defined ad hoc with the ad hoc
// flags (thinroot help ad-hoc); for a name that has one, those flags are
// refused, since they would silently replace what the file says.

// configSet is every config a command works with, by root: what the
// Manager needs and what the builder needs.
type configSet struct {
	byRoot map[string]loadedConfig
}

type loadedConfig struct {
	vol   lvm.Config
	build builder.ConfigInfo
	file  string // "" for an ad hoc config
	adHoc bool
}

// serves tells whether name is one of the set's configs from a file, by
// its root or its file's name.
func (s configSet) serves(name string) bool {
	for root, lc := range s.byRoot {
		if lc.adHoc || lc.file == "" {
			continue
		}
		if root == name || strings.TrimSuffix(filepath.Base(lc.file), ".cfg") == name {
			return true
		}
	}
	return false
}

func (s configSet) lvm() []lvm.Config {
	roots := s.roots()
	out := make([]lvm.Config, 0, len(roots))
	for _, r := range roots {
		out = append(out, s.byRoot[r].vol)
	}
	return out
}

func (s configSet) roots() []string {
	roots := make([]string, 0, len(s.byRoot))
	for r := range s.byRoot {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	return roots
}

// buildInfo answers the builder for a build's config; an unknown one is
// refused saying which configs the daemon serves.
func (s configSet) buildInfo(root string) (builder.ConfigInfo, error) {
	c, ok := s.byRoot[root]
	if !ok {
		roots := s.roots()
		serves := "none"
		if len(roots) > 0 {
			serves = andList(roots)
		}
		msg := fmt.Sprintf("the daemon has no config %q (it serves %s); %s", root, serves,
			didYouMean(root, roots, "the daemon reads config files when it starts: restart it after adding one"))
		return builder.ConfigInfo{}, builder.Refusal(builder.ErrUnknownConfig, msg)
	}
	return c.build, nil
}

func (a *app) loader() *mockcfg.Loader {
	return &mockcfg.Loader{ConfigDir: a.g.configDir}
}

// hasFile tells whether name has a config file, and which.
func (a *app) hasFile(name string) (string, bool) {
	p := a.loader().Path(name)
	st, err := os.Stat(p)
	return p, err == nil && !st.IsDir()
}

// adHocGiven lists the ad hoc flags given on the command line.
func (a *app) adHocGiven() []string {
	var out []string
	for _, n := range adHocFlagNames() {
		if changed(a.flags, n) {
			out = append(out, n)
		}
	}
	return out
}

// resolveConfig turns a CONFIG argument into a config: its config file, or
// for a name without one, the ad hoc flags (and a bootstrap argv given
// after "--"). --uniqueext applies to either, as mock's option does.
func (a *app) resolveConfig(name string, bootstrap []string) (loadedConfig, error) {
	lc, err := a.resolveConfigFile(name, bootstrap)
	if err != nil {
		return lc, err
	}
	if changed(a.flags, "uniqueext") {
		lc.vol.UniqueExt = getString(a.flags, "uniqueext")
		if err := lvm.ValidateExt(lc.vol.Root, lc.vol.UniqueExt); err != nil {
			return lc, err
		}
	}
	return lc, nil
}

func (a *app) resolveConfigFile(name string, bootstrap []string) (loadedConfig, error) {
	given := a.adHocGiven()
	explicit := a.flags.Lookup("ad-hoc") != nil && getBool(a.flags, "ad-hoc")
	path, exists := a.hasFile(name)
	if !exists {
		if explicit || len(given) > 0 || len(bootstrap) > 0 {
			c, err := a.configFromFlags(name, bootstrap)
			if err != nil {
				return loadedConfig{}, err
			}
			return loadedConfig{vol: c, build: builder.ConfigInfo{Root: c.Root}, adHoc: true}, nil
		}
		return loadedConfig{}, a.noConfig(name, path)
	}
	if explicit {
		return loadedConfig{}, usageErr("config %s has a file (%s); --ad-hoc defines only names that have none: drop --ad-hoc to use the file, or choose another name", name, path)
	}
	lc, err := a.fileConfig(name)
	if err != nil {
		return lc, err
	}
	if len(given) > 0 {
		var keys, vals []string
		for _, f := range given {
			keys = append(keys, adHocKeys[f])
			vals = append(vals, fileValue(lc.vol, f))
		}
		return lc, usageErr("%s would override %s of config %s, which %s sets (%s); change it in the file, or define another name with --ad-hoc",
			andList(dashed(given)), andList(keys), name, lc.file, strings.Join(vals, ", "))
	}
	if len(bootstrap) > 0 {
		return lc, usageErr("a bootstrap argv after -- would override thinroot.bootstrap of config %s, which %s sets (%s); change it in the file, or define another name with --ad-hoc",
			name, lc.file, fileValue(lc.vol, "bootstrap"))
	}
	return lc, nil
}

func dashed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	return out
}

// fileValue is what a config file gives for the key an ad hoc flag sets.
func fileValue(c lvm.Config, flag string) string {
	q := func(s string) string {
		if s == "" {
			return "unset"
		}
		return s
	}
	switch flag {
	case "backend":
		return c.Backend
	case "volume-group":
		return q(c.BackendOptions[lvm2.OptionVolumeGroup])
	case "pool":
		return c.Pool
	case "size":
		return size.Format(c.Size)
	case "pool-size":
		if c.PoolSize == 0 {
			return "unset"
		}
		return size.Format(c.PoolSize)
	case "pool-dir":
		return q(c.PoolDirectory)
	case "filesystem":
		return c.Filesystem
	case "mkfs-command":
		return c.MkfsCommand
	case "mkfs-arg":
		return q(strings.Join(c.MkfsArgs, " "))
	case "mount-options":
		return q(c.MountOptions)
	case "no-check-size":
		return fmt.Sprintf("check_size %v", c.CheckSize)
	case "bootstrap":
		return q(strings.Join(c.Bootstrap, " "))
	}
	return "set"
}

// noConfig is the error for a name with no config file and no ad hoc
// definition: what is missing, the closest names, where to look.
func (a *app) noConfig(name, path string) error {
	msg := fmt.Sprintf("no config %q (no file %s)", name, path)
	hint := "`thinroot config list` lists the configs in " + a.g.configDir + ", and --ad-hoc defines one on the command line"
	names, _ := a.loader().List()
	if suggest(name, names) != "" {
		hint = didYouMean(name, names, hint)
	} else if _, err := a.loader().Load(name); err != nil {
		if _, alts, ok := strings.Cut(err.Error(), "; alternatives: "); ok {
			hint = "mock's aliases suggest " + alts + "; " + hint
		}
	}
	return &cliError{code: exitConfig, msg: msg, err: mockcfg.ErrNotFound, hint: hint}
}

// requireVolumes refuses to work on an ad hoc config that no pool holds
// volumes of: it exists nowhere, most likely a misspelt name.
func (a *app) requireVolumes(m *lvm.Manager, lc loadedConfig) error {
	if !lc.adHoc {
		return nil
	}
	// A registered config is listed even without volumes; it exists only
	// when a pool holds some of its volumes (or someone bootstraps it).
	if p, cs := m.State().Config(lc.vol.Root); cs != nil && p.Name == lc.vol.Pool &&
		(len(cs.Snapshots) > 0 || len(cs.Workdirs) > 0 || cs.State != lvm.StateUninitialized) {
		return nil
	}
	path, _ := a.hasFile(lc.vol.Root)
	msg := fmt.Sprintf("no config %q (no file %s, and pool %s holds no volumes of it)", lc.vol.Root, path, lc.vol.Pool)
	hint := "`thinroot init " + lc.vol.Root + "` with the same ad hoc flags makes it"
	names, _ := a.loader().List()
	if suggest(lc.vol.Root, names) != "" {
		hint = didYouMean(lc.vol.Root, names, "if not, "+hint)
	}
	return &cliError{code: exitConfig, msg: msg, err: mockcfg.ErrNotFound, hint: hint}
}

// configFromFlags builds an ad hoc config for root from the flags.
func (a *app) configFromFlags(root string, bootstrap []string) (lvm.Config, error) {
	fs := a.flags
	backend := getString(fs, "backend")
	if backend == "" {
		backend = file.Kind
	}
	c := lvm.Config{Root: root, Backend: backend, BackendOptions: backendOptions(getString(fs, "volume-group")), Pool: getString(fs, "pool"),
		Filesystem: getString(fs, "filesystem"), MkfsCommand: getString(fs, "mkfs-command"), MountOptions: getString(fs, "mount-options"),
		PoolDirectory: getString(fs, "pool-dir"), Basedir: a.g.basedir, CheckSize: !getBool(fs, "no-check-size"),
		Size: getSize(fs, "size"), PoolSize: getSize(fs, "pool-size")}
	if backend == "lvm2" && c.BackendOptions[lvm2.OptionVolumeGroup] == "" {
		return c, usageErr("--backend lvm2 needs --volume-group VG (lvm_root_opts.volume_group)")
	}
	if c.Basedir == "" {
		c.Basedir = lvm.DefaultBasedir
	}
	c.MkfsArgs = getStrings(fs, "mkfs-arg")
	c.Bootstrap = bootstrap
	if b := getStrings(fs, "bootstrap"); len(b) > 0 {
		if len(bootstrap) > 0 {
			return c, usageErr("the bootstrap is given twice, with --bootstrap and after --; give one")
		}
		c.Bootstrap = b
	}
	if err := c.Normalize(); err != nil {
		return c, err
	}
	return c, nil
}

// configManager resolves the CONFIG argument and returns the Manager with
// that config registered. An ad hoc config must have volumes unless the
// command makes them (create).
func (a *app) configManager(ctx context.Context, name string, bootstrap []string, create bool) (*lvm.Manager, *lvm.Config, error) {
	lc, err := a.resolveConfig(name, bootstrap)
	if err != nil {
		return nil, nil, err
	}
	if !lc.adHoc || create {
		m, err := a.manager(ctx, lc.vol)
		if err != nil {
			return nil, nil, err
		}
		rc, err := m.Config(lc.vol.Root)
		return m, rc, err
	}
	// An ad hoc config is looked for before it is registered: registering
	// leaves a lock file behind, which a misspelt name must not.
	m, err := a.manager(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := a.requireVolumes(m, lc); err != nil {
		return nil, nil, err
	}
	if err := m.AddConfig(lc.vol); err != nil {
		return nil, nil, err
	}
	if _, err := m.Refresh(ctx); err != nil {
		a.logger().Warn("scan", "err", err)
	}
	rc, err := m.Config(lc.vol.Root)
	return m, rc, err
}

// fileConfig loads a config file and maps it to thinroot's configs.
func (a *app) fileConfig(name string) (loadedConfig, error) {
	cfg, err := a.loader().Load(name)
	if err != nil {
		if errors.Is(err, mockcfg.ErrNotFound) {
			return loadedConfig{}, a.noConfig(name, a.loader().Path(name))
		}
		return loadedConfig{}, &cliError{code: exitConfig, msg: "config " + oneLine(strings.TrimPrefix(err.Error(), "load ")),
			hint: "fix the file (mock would refuse it too)", err: err}
	}
	st, err := cfg.Thinroot()
	if err != nil {
		return loadedConfig{}, &cliError{code: exitConfig, msg: "config " + name + ": " + oneLine(err.Error()), hint: "fix the file", err: err}
	}
	lc, err := a.fromSettings(cfg, st)
	if err != nil {
		return lc, &cliError{code: exitConfig, msg: oneLine(err.Error()), hint: "fix " + cfg.File(), err: err}
	}
	return lc, nil
}

// fromSettings maps what a mock config says to thinroot's configs.
func (a *app) fromSettings(cfg *mockcfg.Config, st mockcfg.Settings) (loadedConfig, error) {
	file := cfg.File()
	l := st.LVM
	c := lvm.Config{
		Root: st.Root, Backend: st.Thinroot.Backend, BackendOptions: backendOptions(l.VolumeGroup), Pool: l.PoolName,
		Size: l.Size, PoolSize: st.Thinroot.PoolSize, PoolDirectory: st.Thinroot.PoolDir,
		PoolMetadataSize: l.PoolMetadataSize, Filesystem: l.Filesystem, MkfsCommand: l.MkfsCommand,
		MkfsArgs: l.MkfsArgs, MountOptions: l.MountOptions, CheckSize: l.CheckSize, UmountRoot: l.UmountRoot,
		SleepTime: time.Duration(l.SleepTime * float64(time.Second)),
		Basedir:   st.Basedir, UniqueExt: st.UniqueExt, Bootstrap: st.Thinroot.Bootstrap,
	}
	if a.g.basedir != "" {
		c.Basedir = a.g.basedir
	}
	if v, ok := st.Thinroot.Extra["autoextend_step"]; ok {
		n, err := mockcfg.ParseSize(fmt.Sprint(v))
		if err != nil {
			return loadedConfig{}, fmt.Errorf("config %s: thinroot.autoextend_step: %w", st.Root, err)
		}
		c.AutoExtendStep = n
	}
	if file != "" {
		// Relative paths in the bootstrap argv are relative to the
		// config file, wherever thinroot is run from.
		abs, err := filepath.Abs(file)
		if err != nil {
			return loadedConfig{}, err
		}
		c.BootstrapDir = filepath.Dir(abs)
	}
	rpm, err := a.rpmConfig(cfg, st, &c)
	if err != nil {
		return loadedConfig{}, err
	}
	if err := c.Normalize(); err != nil {
		return loadedConfig{}, fmt.Errorf("config %s: %w", st.Root, err)
	}
	limits, err := configLimits(st.Thinroot.Extra)
	if err != nil {
		return loadedConfig{}, fmt.Errorf("config %s: %w", st.Root, err)
	}
	bi := builder.ConfigInfo{Root: st.Root, Build: st.Thinroot.Build, Network: st.Thinroot.Network, RPM: rpm, Limits: limits}
	return loadedConfig{vol: c, build: bi, file: file}, nil
}

// loadConfigs gathers the configs of a long-running command: the ones
// named with -r/--config (each from its file or from the ad hoc flags),
// or every config in the config dir. A config that fails to load is
// skipped with a warning; the others still serve.
func (a *app) loadConfigs(ctx context.Context) (configSet, error) {
	set := configSet{byRoot: map[string]loadedConfig{}}
	names := getStrings(a.flags, "config")
	explicit := len(names) > 0
	if !explicit {
		if given := a.adHocGiven(); len(given) > 0 {
			return set, usageErr("--%s defines an ad hoc config, but no config is named: give it with -r NAME", given[0])
		}
		var err error
		if names, err = a.loader().List(); err != nil {
			a.logger().Warn("no config files", "config_dir", a.g.configDir, "err", err)
			names = nil
		}
	}
	for _, n := range names {
		lc, err := a.resolveConfig(n, nil)
		if err != nil {
			if explicit {
				return set, err
			}
			a.logger().Warn("skipping a config that does not load", "config", n, "err", err)
			continue
		}
		set.byRoot[lc.vol.Root] = lc
	}
	a.logger().Info("configs loaded", "count", len(set.byRoot), "config_dir", a.g.configDir)
	return set, nil
}
