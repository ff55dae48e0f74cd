package lvm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/blockfs"
)

// Mounter is how the Manager mounts volumes at mock's paths and looks at
// what is mounted. The host's (the default) mounts for real; tests that
// run without root use the memory backend's, which keeps a table of its
// own.
type Mounter interface {
	// Mount mounts what spec says at target, an existing directory.
	// options are the config's mount options, for block volumes.
	Mount(spec backend.Mount, target, options string) error
	// Unmount unmounts target; not mounted is no error. A mount still in
	// use fails wrapping ErrBusy, unless lazy (detached now, cleaned up
	// when its last user leaves).
	Unmount(target string, lazy bool) error
	// Discard unmounts a workdir about to be removed without writing
	// back what its cache holds; a mount still in use fails wrapping
	// ErrBusy, as Unmount.
	Discard(target string) error
	// Mounted reads the mount table once and answers from it whether
	// something is mounted at a path.
	Mounted() (func(path string) bool, error)
	// Thaw thaws a filesystem a dead process left frozen.
	Thaw(dir string)
}

// HostMounter is the host's Mounter, the Manager's default.
func HostMounter() Mounter { return hostMounter{} }

// hostMounter mounts with mount(2): block volumes with their filesystem
// (blockfs), directory volumes with a bind mount.
type hostMounter struct{}

func (hostMounter) Mount(spec backend.Mount, target, options string) error {
	if spec.Type == backend.Bind {
		return mount.Bind(spec.Source, target)
	}
	return blockfs.Mount(spec.Source, target, spec.Type, options)
}

func (hostMounter) Unmount(target string, lazy bool) error {
	err := mount.Unmount(target, lazy)
	if err != nil && errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

func (hostMounter) Discard(target string) error {
	err := mount.Discard(target)
	if err != nil && errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

func (hostMounter) Mounted() (func(string) bool, error) {
	table, err := mount.Table()
	if err != nil {
		return func(string) bool { return false }, err
	}
	return func(p string) bool {
		_, ok := mount.Lookup(table, p)
		return ok
	}, nil
}

func (hostMounter) Thaw(dir string) { mount.Thaw(dir) }

// isMounted asks the mounter about one path.
func (m *Manager) isMounted(path string) bool {
	mounted, _ := m.mounter.Mounted()
	return mounted(path)
}

// mountVolume mounts an active volume of config c at target: the
// config's filesystem and mount options for a block volume, a bind mount
// for a directory volume.
func (m *Manager) mountVolume(c *Config, be backend.Backend, v *backend.Volume, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if m.isMounted(target) {
		return fmt.Errorf("mount %s: something is already mounted there: %w", target, ErrBusy)
	}
	spec, options := v.Mount, ""
	if be.Capabilities().Block {
		spec.Type, options = c.Filesystem, c.MountOptions
	}
	return m.mounter.Mount(spec, target, options)
}

// release gives an activation's hold back to the backend.
func release(be backend.Backend, v *backend.Volume) {
	if r, ok := be.(backend.Releaser); ok && v != nil {
		r.Release(v)
	}
}

// removeMountDirs removes a workdir's empty mount point and its parent
// when that is empty too; anything with files in it stays.
func removeMountDirs(target string) {
	os.Remove(target)
	os.Remove(filepath.Dir(target))
}
