package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/size"
	"github.com/thinroot/thinroot/lvm/lvm2"
)

var cmdConfigList = &command{
	name: "config list", group: "config",
	summary: "list the config files in the config dir",
	uses:    useJSON,
	run:     runConfigList,
}

var cmdConfigShow = &command{
	name: "config show", group: "config", args: []arg{argCfg},
	summary: "print what thinroot takes from a config",
	help: "--json prints instead the whole config as mock computes it, with mock's own keys (every key, rendered); " +
		"--resolved --json prints what the text form shows, as JSON.",
	uses: useConfig | useJSON,
	flags: func(fs *pflag.FlagSet) {
		fs.Bool("resolved", false, "with --json: print what thinroot uses (the text form's fields), not mock's keys")
	},
	run: runConfigShow,
}

func runConfigList(ctx context.Context, a *app, args []string) error {
	names, err := a.loader().List()
	if err != nil {
		return &cliError{code: exitConfig, err: err, msg: oneLine(err.Error()),
			hint: "point --config-dir (or THINROOT_CONFIG_DIR) at mock's config directory"}
	}
	if a.jsonOut() {
		if names == nil {
			names = []string{}
		}
		return writeJSON(a.stdout, names)
	}
	for _, n := range names {
		fmt.Fprintln(a.stdout, n)
	}
	return nil
}

// resolvedConfig is what thinroot takes from a config, as config show
// prints it.
type resolvedConfig struct {
	File          string   `json:"file"`
	Root          string   `json:"root"`
	Backend       string   `json:"backend"`
	Pool          string   `json:"pool"`
	VolumeGroup   string   `json:"volume_group,omitempty"`
	SizeBytes     int64    `json:"size_bytes"`
	PoolSizeBytes int64    `json:"pool_size_bytes,omitempty"`
	PoolDir       string   `json:"pool_dir,omitempty"`
	Filesystem    string   `json:"filesystem"`
	MkfsCommand   string   `json:"mkfs_command"`
	MkfsArgs      []string `json:"mkfs_args"`
	MountOptions  string   `json:"mount_options,omitempty"`
	CheckSize     bool     `json:"check_size"`
	Basedir       string   `json:"basedir"`
	UniqueExt     string   `json:"uniqueext"`
	Bootstrap     []string `json:"bootstrap"`
	BootstrapDir  string   `json:"bootstrap_dir,omitempty"`
	Build         []string `json:"build"`
	Network       bool     `json:"network"`
	// RPMBuilds says how RPM builds run for a package-manager config:
	// the package manager, the build user, the package cache.
	RPMBuilds string `json:"rpm_builds,omitempty"`
	// Limits are the config's own resource limits (memory_max, pids_max,
	// cpus); the daemon's defaults apply where it sets none.
	Limits builder.Limits `json:"limits,omitzero"`
}

func runConfigShow(ctx context.Context, a *app, args []string) error {
	name := args[0]
	resolved := getBool(a.flags, "resolved")
	if a.jsonOut() && !resolved {
		// Exactly mock's view of the config: tools compare it with mock's.
		cfg, err := a.loader().Load(name)
		if err != nil {
			if _, ok := a.hasFile(name); !ok {
				return a.noConfig(name, a.loader().Path(name))
			}
			return &cliError{code: exitConfig, err: err, msg: "config " + oneLine(err.Error()), hint: "fix the file"}
		}
		data, err := cfg.JSON()
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(append(data, '\n'))
		return err
	}
	lc, err := a.fileConfig(name)
	if err != nil {
		return err
	}
	v, b := lc.vol, lc.build
	rc := resolvedConfig{File: lc.file, Root: v.Root, Backend: v.Backend, Pool: v.Pool, VolumeGroup: v.BackendOptions[lvm2.OptionVolumeGroup],
		SizeBytes: v.Size, PoolSizeBytes: v.PoolSize, PoolDir: v.PoolDirectory, Filesystem: v.Filesystem,
		MkfsCommand: v.MkfsCommand, MkfsArgs: nonNil(v.MkfsArgs), MountOptions: v.MountOptions, CheckSize: v.CheckSize,
		Basedir: v.Basedir, UniqueExt: v.UniqueExt, Bootstrap: nonNil(v.Bootstrap), BootstrapDir: v.BootstrapDir,
		Build: nonNil(b.Build), Network: b.Network, Limits: b.Limits}
	if b.RPM != nil {
		rc.RPMBuilds = fmt.Sprintf("%s, build user %s %d:%d, package cache %s", b.RPM.PM.Kind, b.RPM.User, b.RPM.UID, b.RPM.GID, b.RPM.PM.CacheDir)
	}
	if a.jsonOut() {
		return writeJSON(a.stdout, rc)
	}
	kv := func(k string, val any) { fmt.Fprintf(a.stdout, "%-15s %v\n", k+":", val) }
	kv("file", rc.File)
	kv("root", rc.Root)
	kv("backend", rc.Backend)
	kv("pool", rc.Pool)
	if rc.VolumeGroup != "" {
		kv("volume_group", rc.VolumeGroup)
	}
	kv("size", size.Format(rc.SizeBytes))
	if rc.PoolSizeBytes != 0 {
		kv("pool_size", size.Format(rc.PoolSizeBytes))
	}
	if rc.PoolDir != "" {
		kv("pool_dir", rc.PoolDir)
	}
	kv("filesystem", rc.Filesystem)
	kv("mkfs", joinArgs(append([]string{rc.MkfsCommand}, rc.MkfsArgs...)))
	kv("mount_options", dash(rc.MountOptions))
	kv("check_size", rc.CheckSize)
	kv("basedir", rc.Basedir)
	kv("uniqueext", rc.UniqueExt)
	kv("bootstrap", fmt.Sprintf("%q", rc.Bootstrap))
	kv("bootstrap_dir", dash(rc.BootstrapDir))
	kv("build", fmt.Sprintf("%q", rc.Build))
	if rc.RPMBuilds != "" {
		kv("rpm_builds", rc.RPMBuilds)
	}
	kv("network", rc.Network)
	if !rc.Limits.IsZero() {
		kv("limits", limitsLine(rc.Limits))
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
