// Package blockfs makes and mounts the filesystem of a block volume, for
// the backends whose volumes are block devices (Capabilities.Block: lvm2
// and file). mock's lvm_root plugin does the same with the config's
// filesystem, mkfs command and arguments, and mount options; backends
// whose volumes are directories (btrfs) need none of it. It imports only
// internal/mount.
package blockfs

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/thinroot/thinroot/internal/mount"
)

// Format says how to make a volume's filesystem (lvm_root_opts).
type Format struct {
	Filesystem string   // filesystem, default ext4
	Command    string   // mkfs_command, default mkfs.<filesystem>
	Args       []string // mkfs_args; nil means thinroot's defaults
}

// Make runs mkfs on dev.
func Make(ctx context.Context, dev string, f Format) error {
	if f.Filesystem == "" {
		f.Filesystem = "ext4"
	}
	if f.Command == "" {
		f.Command = "mkfs." + f.Filesystem
	}
	argv := append([]string{f.Command, dev}, args(f)...)
	if b, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs: %s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// args are the config's mkfs_args. When a config leaves them out and uses
// plain ext4, thinroot tells mke2fs that the fresh thin volume reads as
// zeros: it then marks every inode table initialized instead of leaving
// them to the kernel's lazy zeroing, which would run again in every clone
// and write (on dm-thin: allocate) the tables once per workdir.
func args(f Format) []string {
	if f.Args != nil || f.Filesystem != "ext4" || f.Command != "mkfs.ext4" || !prezeroedOK() {
		return f.Args
	}
	return []string{"-E", "assume_storage_prezeroed=1"}
}

// prezeroedOK tells whether mke2fs knows assume_storage_prezeroed (1.47+).
var prezeroedOK = sync.OnceValue(func() bool {
	out, _ := exec.Command("mke2fs", "-V").CombinedOutput()
	var maj, min int
	if _, err := fmt.Sscanf(strings.TrimPrefix(string(out), "mke2fs "), "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > 1 || (maj == 1 && min >= 47)
})

// Mount mounts the filesystem on dev at target: fstype when known, else
// the type read off the device's superblock (a config found only through
// its volumes does not say).
func Mount(dev, target, fstype, options string) error {
	if fstype == "" {
		var err error
		if fstype, err = mount.DetectFS(dev); err != nil {
			return err
		}
	}
	return mount.Device(dev, target, fstype, options)
}
