package mock

import "path/filepath"

// Dirs are the paths mock uses for one config under its basedir. Root is
// the config's name (config_opts['root']); the paths built from it are
// named for what they are (ChrootDir is the chroot, not "the root").
type Dirs struct {
	Basedir string
	Root    string
}

// ChrootDir is where the workdir for ext is mounted: mock's chroot path,
// <basedir>/<root>/root for the default ext, <basedir>/<root>-<ext>/root
// for any other unique-ext.
func (d Dirs) ChrootDir(ext string) string {
	return filepath.Join(d.WorkdirDir(ext), "root")
}

// WorkdirDir is the directory above ChrootDir, where mock also keeps
// result/.
func (d Dirs) WorkdirDir(ext string) string {
	if ext == DefaultExt {
		return filepath.Join(d.Basedir, d.Root)
	}
	return filepath.Join(d.Basedir, d.Root+"-"+ext)
}

// SnapinfoPath is mock's record of the current snapshot for ext.
func (d Dirs) SnapinfoPath(ext string) string {
	return filepath.Join(d.Basedir, ".snapinfo-"+ConfID(d.Root)+"."+ext)
}

// InitLockPath is mock's init lock: exclusive while bootstrapping.
func (d Dirs) InitLockPath() string {
	return filepath.Join(d.Basedir, ".lvm-"+ConfID(d.Root)+".lock")
}

// PoolLockPath is mock's per-config pool lock.
func (d Dirs) PoolLockPath() string {
	return filepath.Join(d.Basedir, ".lvm-pool-"+ConfID(d.Root)+".lock")
}
