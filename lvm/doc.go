// Package lvm is the home of thinroot's volumes: the Manager, which holds
// mock's model (configs, their base volume, snapshots and workdirs, the
// current snapshot per unique-ext, locks, the size check, mounting and
// scrub) on top of volume backends, and the read model it publishes
// (State). The thin-volume model is LVM's, whatever the backend.
//
// Its parts, each a package of its own with one job:
//
//	lvm/backend   the backend interface, its errors, capabilities and registry
//	lvm/mock      mock's names, snapinfo records and paths
//	lvm/journal   the crash journal: typed intents of running operations
//	lvm/blockfs   mkfs and mount of block volumes (file, lvm2)
//	lvm/imagepool pools that are a filesystem image or directory (file, btrfs)
//	lvm/file, lvm/btrfs, lvm/lvm2   the backends; lvm/memory the one tests run without root
//	lvm/lvmtest   the contract suite every backend passes (test support)
//
// lvm imports lvm/backend, lvm/mock, lvm/journal, lvm/blockfs and
// internal helpers, never a backend (backends register themselves, and
// the Manager opens them by name); it knows nothing of FUSE, builds or
// lvm2 command lines. The tree, the builder and the CLI import it.
//
// Every Manager operation runs the same skeleton (op.go): open, check,
// lock, journal its intent, act, mark done; when a step fails, the one way
// back the journal describes runs (undo.go), the same code that finishes
// an operation whose process died (recover.go).
package lvm
