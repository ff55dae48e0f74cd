package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm"
)

// configSet is every config a command works with, by root: what the
// Manager needs and what the builder needs.
type configSet struct {
	byRoot map[string]loadedConfig
}

type loadedConfig struct {
	vol   lvm.Config
	build builder.ConfigInfo
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

// loadConfigs gathers the configs named with --config (from the config
// flags).
func (a *app) loadConfigs(ctx context.Context) (configSet, error) {
	set := configSet{byRoot: map[string]loadedConfig{}}
	cs, err := a.flagConfigs()
	if err != nil {
		return set, err
	}
	for _, c := range cs {
		set.byRoot[c.Root] = loadedConfig{vol: c, build: builder.ConfigInfo{Root: c.Root}}
	}
	return set, nil
}
