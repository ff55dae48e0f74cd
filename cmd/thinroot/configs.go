package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/mockcfg"
)

// Configs come from mock's config files (mockcfg reads them as mock does);
// a config can also be defined ad hoc on the command line with the config
// flags, for a quick try without a file.

// configSet is every config a command works with, by root: what the
// Manager needs and what the builder needs.
type configSet struct {
	byRoot map[string]loadedConfig
}

type loadedConfig struct {
	vol   lvm.Config
	build builder.ConfigInfo
	file  string // "" for an ad-hoc config
}

func (s configSet) lvm() []lvm.Config {
	roots := make([]string, 0, len(s.byRoot))
	for r := range s.byRoot {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	out := make([]lvm.Config, 0, len(roots))
	for _, r := range roots {
		out = append(out, s.byRoot[r].vol)
	}
	return out
}

func (s configSet) buildInfo(root string) (builder.ConfigInfo, error) {
	c, ok := s.byRoot[root]
	if !ok {
		return builder.ConfigInfo{}, fmt.Errorf("no config named %s", root)
	}
	return c.build, nil
}

func (a *app) loader() *mockcfg.Loader {
	return &mockcfg.Loader{ConfigDir: a.g.configDir}
}

// adHoc tells whether the command line defines the config itself (any
// config flag given).
func (a *app) adHoc() bool {
	for _, n := range []string{"backend", "volume-group", "pool", "size", "pool-size", "pool-dir", "filesystem", "mkfs-command", "mkfs-arg",
		"mount-options", "no-check-size", "bootstrap"} {
		if f := a.flags.Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}

// resolveConfig turns a CONFIG argument into a config: from the config
// flags when any is given, else from the config file of that name (or
// path, when it ends in .cfg).
func (a *app) resolveConfig(name string, bootstrap []string) (loadedConfig, error) {
	lc, err := a.resolveConfigFile(name, bootstrap)
	if err != nil {
		return lc, err
	}
	// --uniqueext works on any config, as mock's does.
	if f := a.flags.Lookup("uniqueext"); f != nil && f.Changed {
		lc.vol.UniqueExt = f.Value.String()
		if err := lvm.ValidateExt(lc.vol.Root, lc.vol.UniqueExt); err != nil {
			return lc, err
		}
	}
	return lc, nil
}

func (a *app) resolveConfigFile(name string, bootstrap []string) (loadedConfig, error) {
	if a.adHoc() || len(bootstrap) > 0 {
		c, err := a.configFromFlags(name, bootstrap)
		if err != nil {
			return loadedConfig{}, err
		}
		return loadedConfig{vol: c, build: builder.ConfigInfo{Root: c.Root}}, nil
	}
	lc, err := a.fileConfig(name)
	if err != nil {
		if errors.Is(err, mockcfg.ErrNotFound) {
			return lc, fmt.Errorf("%w (config dir %s; or define it with --pool, --size, ... and the bootstrap after --)", err, a.g.configDir)
		}
		return lc, err
	}
	return lc, nil
}

// fileConfig loads a config file and maps it to thinroot's configs.
func (a *app) fileConfig(name string) (loadedConfig, error) {
	cfg, err := a.loader().Load(name)
	if err != nil {
		return loadedConfig{}, err
	}
	st, err := cfg.Thinroot()
	if err != nil {
		return loadedConfig{}, err
	}
	return a.fromSettings(cfg, st)
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
	if len(c.Bootstrap) == 0 {
		argv, err := builder.DnfBootstrap(cfg, st, filepath.Join(a.g.stateDir, "bootstrap"))
		if err != nil && !errors.Is(err, builder.ErrNoBootstrap) {
			return loadedConfig{}, fmt.Errorf("config %s: %w", st.Root, err)
		}
		c.Bootstrap = argv
	}
	if err := c.Normalize(); err != nil {
		return loadedConfig{}, fmt.Errorf("config %s: %w", st.Root, err)
	}
	bi := builder.ConfigInfo{Root: st.Root, Build: st.Thinroot.Build, Network: st.Thinroot.Network}
	return loadedConfig{vol: c, build: bi, file: file}, nil
}

// loadConfigs gathers the configs of a long-running command: the ones
// named with --config (each from its file or from the config flags), or
// every config in the config dir. A config that fails to load is skipped
// with a warning; the others still serve.
func (a *app) loadConfigs(ctx context.Context) (configSet, error) {
	set := configSet{byRoot: map[string]loadedConfig{}}
	names, _ := a.flags.GetStringArray("config")
	explicit := len(names) > 0
	if !explicit {
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

// configNameFlag is the config dir flag every command has.
func configDirFlag(fs *pflag.FlagSet, g *globals) {
	fs.StringVar(&g.configDir, "config-dir", g.configDir, "mock's config directory to read configs from [$THINROOT_CONFIG_DIR]")
}
