package lvm

import "github.com/thinroot/thinroot/lvm/mock"

// mock's names as lvm/mock defines them, for the packages above lvm (the
// tree, the builder, the CLI, the tests) that know the Manager and not
// mock's scheme.
const (
	// DefaultExt is the unique-ext mock uses when none is given.
	DefaultExt = mock.DefaultExt
	// PostInit is the snapshot taken right after bootstrap.
	PostInit = mock.PostInit
	// DefaultPool is mock's shipped default for lvm_root_opts.pool_name.
	DefaultPool = mock.DefaultPool
)

// NameError says why a name was refused; it matches ErrInvalidName.
type NameError = mock.NameError

// VolumeName is a volume name taken apart by mock's scheme.
type VolumeName = mock.VolumeName

// ValidateRoot checks a config's name (mock's config_opts['root']).
func ValidateRoot(root string) error { return mock.ValidateRoot(root) }

// ValidateSnapshot checks a snapshot name of a config.
func ValidateSnapshot(root, snap string) error { return mock.ValidateSnapshot(root, snap) }

// ValidateExt checks a unique-ext of a config.
func ValidateExt(root, ext string) error { return mock.ValidateExt(root, ext) }

// ValidatePool checks a pool name.
func ValidatePool(pool string) error { return mock.ValidatePool(pool) }
