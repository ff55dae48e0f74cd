package main

import (
	"github.com/thinroot/thinroot/lvm/backend"
	// The backends this binary offers: each registers itself by kind, and
	// the Manager opens the one a config names.
	_ "github.com/thinroot/thinroot/lvm/btrfs"
	_ "github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvm2"
)

// discoverSpecs are the backends whose pools the command lists even
// when no config names them: an lvm2 volume group named with
// --volume-group (file and btrfs pools are always listed).
func (a *app) discoverSpecs() []backend.Spec {
	if a.flags == nil {
		return nil
	}
	f := a.flags.Lookup("volume-group")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	return []backend.Spec{lvm2.Spec(f.Value.String())}
}

// backendOptions are the backend settings a config or the command line
// gives: lvm2's volume group (lvm_root_opts.volume_group,
// --volume-group). Backends of other kinds ignore them.
func backendOptions(volumeGroup string) map[string]string {
	if volumeGroup == "" {
		return nil
	}
	return map[string]string{lvm2.OptionVolumeGroup: volumeGroup}
}
