package lvm

import (
	"fmt"
	"path/filepath"
	"time"
)

// Config is what the Manager needs to know of one mock config: its root,
// where its volumes live and how to make and mount them. It comes from a
// mock config file (mockcfg) or, for quick use, from command-line flags.
type Config struct {
	Root string // config_opts['root']
	// Backend is "file" or "lvm2".
	Backend string
	// Pool is lvm_root_opts.pool_name.
	Pool string
	// VolumeGroup is lvm_root_opts.volume_group (lvm2 only).
	VolumeGroup string
	// Size is lvm_root_opts.size: the virtual size of the config's volumes
	// and, as in mock, the size a new pool is created with.
	Size int64
	// PoolSize overrides Size for a new pool (thinroot's own key).
	PoolSize int64
	// PoolDirectory (file backend) uses an existing directory as the pool.
	PoolDirectory string
	// PoolMetadataSize is lvm_root_opts.poolmetadatasize.
	PoolMetadataSize int64
	// AutoExtendStep grows the pool by this many bytes from its volume
	// group's free space when it is over the warn threshold and a new
	// volume is wanted (lvm2 only; 0: never).
	AutoExtendStep int64
	Filesystem     string   // lvm_root_opts.filesystem, default ext4
	MkfsCommand    string   // lvm_root_opts.mkfs_command, default mkfs.<filesystem>
	MkfsArgs       []string // lvm_root_opts.mkfs_args
	MountOptions   string   // lvm_root_opts.mount_options
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
)

// Normalize fills defaults and validates names.
func (c *Config) Normalize() error {
	if err := ValidateRoot(c.Root); err != nil {
		return err
	}
	if c.Pool == "" {
		c.Pool = DefaultPool
	}
	if err := ValidatePool(c.Pool); err != nil {
		return err
	}
	if c.Backend == "" {
		c.Backend = "file"
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
		c.UniqueExt = DefaultExt
	}
	if err := ValidateExt(c.Root, c.UniqueExt); err != nil {
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

// ConfID is mock's conf id for the config.
func (c *Config) ConfID() string { return ConfID(c.Root) }

// RootPath is where the workdir for ext is mounted: mock's chroot path,
// <basedir>/<root>/root for the default ext, <basedir>/<root>-<ext>/root
// for any other unique-ext.
func (c *Config) RootPath(ext string) string {
	return filepath.Join(c.WorkdirDir(ext), "root")
}

// WorkdirDir is the directory above RootPath, where mock also keeps result/.
func (c *Config) WorkdirDir(ext string) string {
	if ext == DefaultExt {
		return filepath.Join(c.Basedir, c.Root)
	}
	return filepath.Join(c.Basedir, c.Root+"-"+ext)
}

// SnapinfoPath is mock's record of the current snapshot for ext.
func (c *Config) SnapinfoPath(ext string) string {
	return filepath.Join(c.Basedir, ".snapinfo-"+c.ConfID()+"."+ext)
}

// InitLockPath is mock's init lock: exclusive while bootstrapping.
func (c *Config) InitLockPath() string {
	return filepath.Join(c.Basedir, ".lvm-"+c.ConfID()+".lock")
}

// PoolLockPath is mock's per-config pool lock.
func (c *Config) PoolLockPath() string {
	return filepath.Join(c.Basedir, ".lvm-pool-"+c.ConfID()+".lock")
}
