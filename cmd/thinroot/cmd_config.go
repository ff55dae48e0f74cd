package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name: "config list", summary: "list the config files in the config dir",
		flags: func(fs *pflag.FlagSet) { fs.Bool("json", false, "print a JSON array") },
		run:   runConfigList,
	})
	register(&command{
		name: "config show", args: "CONFIG", summary: "print a config fully rendered, as mock computes it",
		flags: func(fs *pflag.FlagSet) {
			fs.Bool("json", false, "print the whole config as one JSON object (the default prints what thinroot uses)")
		},
		run: runConfigShow,
	})
}

func runConfigList(ctx context.Context, a *app, args []string) error {
	if len(args) != 0 {
		return usageErr("config list takes no arguments")
	}
	names, err := a.loader().List()
	if err != nil {
		return err
	}
	if j, _ := a.flags.GetBool("json"); j {
		if names == nil {
			names = []string{}
		}
		return json.NewEncoder(a.stdout).Encode(names)
	}
	for _, n := range names {
		fmt.Fprintln(a.stdout, n)
	}
	return nil
}

func runConfigShow(ctx context.Context, a *app, args []string) error {
	name, err := oneArg(args, "CONFIG")
	if err != nil {
		return err
	}
	cfg, err := a.loader().Load(name)
	if err != nil {
		return err
	}
	if j, _ := a.flags.GetBool("json"); j {
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
	kv := func(k string, val any) { fmt.Fprintf(a.stdout, "%-18s %v\n", k+":", val) }
	kv("file", lc.file)
	kv("root", v.Root)
	kv("backend", v.Backend)
	kv("pool", v.Pool)
	for _, k := range sortedKeys(v.BackendOptions) {
		kv(k, v.BackendOptions[k])
	}
	kv("size", v.Size)
	kv("filesystem", v.Filesystem)
	kv("mkfs", joinArgs(append([]string{v.MkfsCommand}, v.MkfsArgs...)))
	kv("mount_options", v.MountOptions)
	kv("check_size", v.CheckSize)
	kv("basedir", v.Basedir)
	kv("unique_ext", v.UniqueExt)
	kv("bootstrap", fmt.Sprintf("%q", v.Bootstrap))
	kv("bootstrap_dir", v.BootstrapDir)
	kv("build", fmt.Sprintf("%q", b.Build))
	kv("network", b.Network)
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
