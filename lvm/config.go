package lvm

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/blockfs"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Config is what the Manager needs to know of one mock config: its name,
// where its volumes live and how to make and mount them. It comes from a
// mock config file (mockcfg) or, for quick use, from command-line flags.
type Config struct {
	Root string // config_opts['root']: the config's name
	// Backend is the kind of backend ("file", "lvm2", "btrfs"; see
	// lvm/backend's registry), BackendOptions its own settings by the
	// names the kind registers (lvm2: volume_group, from
	// lvm_root_opts.volume_group).
	Backend        string
	BackendOptions map[string]string `json:",omitempty"`
	// Pool is lvm_root_opts.pool_name.
	Pool string
	// Size is lvm_root_opts.size: the virtual size of the config's volumes
	// and, as in mock, the size a new pool is created with.
	Size int64
	// PoolSize overrides Size for a new pool (thinroot's own key).
	PoolSize int64
	// PoolDirectory (file, btrfs) uses an existing directory as the pool.
	PoolDirectory string
	// PoolMetadataSize is lvm_root_opts.poolmetadatasize.
	PoolMetadataSize int64
	// AutoExtendStep grows the pool by this many bytes from the space
	// around it when it is over the warn threshold and a new volume is
	// wanted (backends that can: lvm2; 0: never).
	AutoExtendStep int64
	Filesystem     string   // lvm_root_opts.filesystem, default ext4 (block backends)
	MkfsCommand    string   // lvm_root_opts.mkfs_command, default mkfs.<filesystem>
	MkfsArgs       []string // lvm_root_opts.mkfs_args
	MountOptions   string   // lvm_root_opts.mount_options (block backends)
	// CheckSize false lowers the refuse threshold to a warning.
	CheckSize bool
	// UmountRoot is lvm_root_opts.umount_root (mock unmounts the root after
	// a build when set).
	UmountRoot bool
	// SleepTime is lvm_root_opts.sleep_time; mock polls locks with it,
	// thinroot blocks instead and keeps it only for reporting.
	SleepTime time.Duration
	// Basedir is mock's basedir (default /var/lib/mock): mount points,
	// snapinfo records and lock files live there.
	Basedir string
	// UniqueExt is the config's unique-ext (default "head").
	UniqueExt string
	// Bootstrap is the argv run against the mounted base volume with ROOT
	// in its environment.
	Bootstrap []string
	// BootstrapEnv adds to the bootstrap's environment ("K=V").
	BootstrapEnv []string
	// BootstrapDir is the bootstrap's working directory (the config
	// file's directory, so relative paths in its argv work); "" keeps the
	// caller's.
	BootstrapDir string
}

// Defaults mock uses when a config does not say.
const (
	DefaultBasedir    = "/var/lib/mock"
	DefaultFilesystem = "ext4"
	DefaultSize       = 8 << 30
	// DefaultBackend is the backend of a config that names none.
	DefaultBackend = "file"
)

// Normalize fills defaults and validates names.
func (c *Config) Normalize() error {
	if err := mock.ValidateRoot(c.Root); err != nil {
		return err
	}
	if c.Pool == "" {
		c.Pool = mock.DefaultPool
	}
	if err := mock.ValidatePool(c.Pool); err != nil {
		return err
	}
	if c.Backend == "" {
		c.Backend = DefaultBackend
	}
	if c.Filesystem == "" {
		c.Filesystem = DefaultFilesystem
	}
	if c.MkfsCommand == "" {
		c.MkfsCommand = "mkfs." + c.Filesystem
	}
	if c.Basedir == "" {
		c.Basedir = DefaultBasedir
	}
	if !filepath.IsAbs(c.Basedir) {
		return fmt.Errorf("config %s: basedir %q is not an absolute path", c.Root, c.Basedir)
	}
	c.Basedir = filepath.Clean(c.Basedir)
	if c.UniqueExt == "" {
		c.UniqueExt = mock.DefaultExt
	}
	if err := mock.ValidateExt(c.Root, c.UniqueExt); err != nil {
		return err
	}
	if c.Size <= 0 {
		c.Size = DefaultSize
	}
	if c.SleepTime == 0 {
		c.SleepTime = time.Second
	}
	return nil
}

// BackendSpec is the backend the config names, with the settings of its
// kind; an error when the kind is not registered or a setting is missing.
func (c *Config) BackendSpec() (backend.Spec, error) {
	s, err := backend.SpecFor(c.Backend, c.BackendOptions)
	if err != nil {
		return s, fmt.Errorf("config %s: %w", c.Root, err)
	}
	return s, nil
}

// ConfID is mock's conf id for the config.
func (c *Config) ConfID() string { return mock.ConfID(c.Root) }

// dirs are the config's paths under mock's basedir.
func (c *Config) dirs() mock.Dirs { return mock.Dirs{Basedir: c.Basedir, Root: c.Root} }

// ChrootDir is where the workdir for ext is mounted: mock's chroot path,
// <basedir>/<root>/root for the default ext, <basedir>/<root>-<ext>/root
// for any other unique-ext.
func (c *Config) ChrootDir(ext string) string { return c.dirs().ChrootDir(ext) }

// WorkdirDir is the directory above ChrootDir, where mock also keeps result/.
func (c *Config) WorkdirDir(ext string) string { return c.dirs().WorkdirDir(ext) }

// SnapinfoPath is mock's record of the current snapshot for ext.
func (c *Config) SnapinfoPath(ext string) string { return c.dirs().SnapinfoPath(ext) }

// InitLockPath is mock's init lock: exclusive while bootstrapping.
func (c *Config) InitLockPath() string { return c.dirs().InitLockPath() }

// PoolLockPath is mock's per-config pool lock.
func (c *Config) PoolLockPath() string { return c.dirs().PoolLockPath() }

// format is how a block volume of the config gets its filesystem.
func (c *Config) format() blockfs.Format {
	return blockfs.Format{Filesystem: c.Filesystem, Command: c.MkfsCommand, Args: c.MkfsArgs}
}
