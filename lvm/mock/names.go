// Package mock holds what thinroot shares with mock's lvm_root plugin, in
// one place: the volume names (mock.<root>.<snap>, +mock.<root>.<ext>)
// and the rules for the names that go into them, the current-snapshot
// records (.snapinfo-*) and the paths under mock's basedir (chroot
// directories, records, lock files). It imports only lvm/backend (for
// ErrInvalidName) and small helpers: the Manager, the backends' tests and
// the fault suite use it.
package mock

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/thinroot/thinroot/lvm/backend"
)

// Mock's naming scheme (lvm_root plugin). thinroot uses it unchanged so
// that mock and thinroot can share a volume group.
const (
	// Prefix is mock's LV name prefix; a config's id is Prefix+"."+root.
	Prefix = "mock"
	// HeadMark starts the name of a working volume ("head" LV).
	HeadMark = "+"
	// DefaultExt is the unique-ext mock uses when none is given.
	DefaultExt = "head"
	// PostInit is the snapshot taken right after bootstrap.
	PostInit = "postinit"
	// DefaultPool is mock's shipped default for lvm_root_opts.pool_name.
	DefaultPool = "mockbuild"
)

// maxLVName is LVM's limit on an LV name (NAME_LEN 128, less the NUL).
const maxLVName = 127

// lvmReservedInfix are substrings LVM refuses anywhere in an LV name
// because it uses them for its own hidden sub-volumes.
var lvmReservedInfix = []string{
	"_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_iorig",
	"_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta",
	"_vdata", "_vorigin", "_imeta", "_vdo",
}

// lvmReservedPrefix are prefixes LVM refuses at the start of an LV name.
var lvmReservedPrefix = []string{"snapshot", "pvmove"}

// ConfID is mock's conf id for a config root: "mock.<root>".
func ConfID(root string) string { return Prefix + "." + root }

// SnapshotVolume is the volume name (on lvm2, the LV name) of snapshot
// snap of config root.
func SnapshotVolume(root, snap string) string { return ConfID(root) + "." + snap }

// WorkdirVolume is the volume name of the working volume for unique-ext
// ext of config root.
func WorkdirVolume(root, ext string) string { return HeadMark + ConfID(root) + "." + ext }

// IsOurs applies mock's ownership rule to a volume name: it belongs to config
// root when, with the head mark removed, it starts with "mock.<root>.".
// The caller also checks that the volume is a thin volume of the config's
// pool; the name alone is not enough.
func IsOurs(root, lv string) bool {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(lv, HeadMark), ConfID(root)+".")
	return ok && rest != ""
}

// VolumeName is a volume name taken apart by mock's scheme.
type VolumeName struct {
	Root    string // config root
	Name    string // snapshot name or unique-ext
	Workdir bool   // a working volume ("+mock.<root>.<ext>")
}

// ParseVolume takes a volume name apart. Roots may contain dots
// ("opensuse-leap-15.5-x86_64"), so the caller passes the roots it knows;
// the longest known root that fits wins. An LV of an unknown root is split
// at its last dot, which is right for every name thinroot creates (snapshot
// names and exts cannot contain dots).
func ParseVolume(lv string, knownRoots []string) (VolumeName, bool) {
	workdir := strings.HasPrefix(lv, HeadMark)
	rest, ok := strings.CutPrefix(strings.TrimPrefix(lv, HeadMark), Prefix+".")
	if !ok {
		return VolumeName{}, false
	}
	best := ""
	for _, r := range knownRoots {
		if len(r) > len(best) && strings.HasPrefix(rest, r+".") && len(rest) > len(r)+1 {
			best = r
		}
	}
	if best != "" {
		return VolumeName{Root: best, Name: rest[len(best)+1:], Workdir: workdir}, true
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return VolumeName{}, false
	}
	return VolumeName{Root: rest[:i], Name: rest[i+1:], Workdir: workdir}, true
}

// NameError says why a name was refused. It matches backend.ErrInvalidName.
type NameError struct {
	Kind   string // "config", "snapshot", "unique-ext", "pool"
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s", e.Kind, e.Name, e.Reason)
}

func (e *NameError) Is(target error) bool { return target == backend.ErrInvalidName }

func nameErr(kind, name, format string, args ...any) error {
	return &NameError{Kind: kind, Name: name, Reason: fmt.Sprintf(format, args...)}
}

// checkChars applies LVM's character set; extra lists characters allowed
// on top of [A-Za-z0-9_-].
func checkChars(kind, name, extra string) error {
	if name == "" {
		return nameErr(kind, name, "empty")
	}
	if !utf8.ValidString(name) {
		return nameErr(kind, name, "not valid UTF-8")
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		case r < 128 && strings.ContainsRune(extra, r):
		case r == '/':
			return nameErr(kind, name, "contains '/'")
		case r == 0:
			return nameErr(kind, name, "contains NUL")
		case r == '\n' || r == '\r':
			return nameErr(kind, name, "contains a line break")
		default:
			return nameErr(kind, name, "character %q at byte %d is not allowed (use letters, digits and %s)", r, i, "_-"+extra)
		}
	}
	switch name[0] {
	case '-':
		return nameErr(kind, name, "starts with '-'")
	case '.':
		return nameErr(kind, name, "starts with '.'")
	}
	return nil
}

// ValidateRoot checks a config root name (mock's config_opts['root']).
// Roots may contain '.' and '+' ("rhel+epel-8-x86_64").
func ValidateRoot(root string) error {
	if err := checkChars("config", root, ".+"); err != nil {
		return err
	}
	// The shortest LV we make for it must still fit.
	if n := len(WorkdirVolume(root, "x")); n > maxLVName {
		return nameErr("config", root, "too long: its volume names would exceed %d bytes", maxLVName)
	}
	return checkReserved("config", root, root)
}

// ValidateSnapshot checks a snapshot name of config root.
func ValidateSnapshot(root, snap string) error {
	return validateLeaf("snapshot", snap, SnapshotVolume(root, snap))
}

// ValidateExt checks a unique-ext of config root.
func ValidateExt(root, ext string) error {
	return validateLeaf("unique-ext", ext, WorkdirVolume(root, ext))
}

// validateLeaf checks a snapshot name or ext. Dots are refused because the
// last dot of an LV name separates the root from the leaf, which keeps
// volumes of configs without a config file parseable.
func validateLeaf(kind, name, lv string) error {
	if err := checkChars(kind, name, "+"); err != nil {
		return err
	}
	if len(lv) > maxLVName {
		return nameErr(kind, name, "too long: volume name %d bytes, LVM allows %d", len(lv), maxLVName)
	}
	return checkReserved(kind, name, lv)
}

// ValidatePool checks a thin pool name (an LV name of its own).
func ValidatePool(pool string) error {
	if err := checkChars("pool", pool, ".+"); err != nil {
		return err
	}
	if pool == "." || pool == ".." {
		return nameErr("pool", pool, "reserved")
	}
	if len(pool) > maxLVName {
		return nameErr("pool", pool, "longer than %d bytes", maxLVName)
	}
	for _, p := range lvmReservedPrefix {
		if strings.HasPrefix(pool, p) {
			return nameErr("pool", pool, "LVM reserves names starting with %q", p)
		}
	}
	return checkReserved("pool", pool, pool)
}

func checkReserved(kind, name, lv string) error {
	for _, s := range lvmReservedInfix {
		if strings.Contains(lv, s) {
			return nameErr(kind, name, "LVM reserves %q inside volume names", s)
		}
	}
	return nil
}
