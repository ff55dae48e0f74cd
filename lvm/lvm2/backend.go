package lvm2

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Kind is the backend's name in configs and stats.
const Kind = "lvm2"

// Tags thinroot records on a pool it creates. LVM allows '=' and '.' in
// tags, so "thinroot.warn=75" is one valid tag.
const (
	tagWarn   = "thinroot.warn="
	tagRefuse = "thinroot.refuse="
)

// ErrNoRoom is returned by Extend when the volume group cannot give the
// pool the space asked for.
var ErrNoRoom = fmt.Errorf("no room left in the volume group: %w", backend.ErrNoRoom)

// Backend is the lvm2 backend bound to one volume group. Its zero value is
// not usable; make one with New.
type Backend struct {
	vg  string
	run *Runner
	log *slog.Logger
	dev devices
}

// Options tune New. The zero value is right for production.
type Options struct {
	// Runner runs the lvm2 commands; a new one on "lvm" when nil.
	Runner *Runner
	Log    *slog.Logger
	// DeviceWait bounds the wait for a new volume's device node (default 5 s).
	DeviceWait time.Duration
	// SysDir and DevDir are /sys and /dev (tests move them).
	SysDir, DevDir string
}

// New returns the backend of volume group vg.
func New(vg string, opts Options) (*Backend, error) {
	if err := validateVG(vg); err != nil {
		return nil, err
	}
	b := &Backend{vg: vg, run: opts.Runner, log: opts.Log}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("backend", Kind, "vg", vg)
	if b.run == nil {
		b.run = &Runner{Log: b.log}
	}
	b.dev = devices{sys: opts.SysDir, dev: opts.DevDir, wait: opts.DeviceWait, log: b.log}
	if b.dev.sys == "" {
		b.dev.sys = "/sys"
	}
	if b.dev.dev == "" {
		b.dev.dev = "/dev"
	}
	if b.dev.wait <= 0 {
		b.dev.wait = 5 * time.Second
	}
	return b, nil
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Extender = (*Backend)(nil)
)

// OptionVolumeGroup is the backend's one setting: the volume group it
// works in (lvm_root_opts.volume_group).
const OptionVolumeGroup = "volume_group"

func init() {
	backend.Register(backend.Kind{Name: Kind, Options: []string{OptionVolumeGroup}, Required: []string{OptionVolumeGroup},
		Open: func(env backend.Env, o map[string]string) (backend.Backend, error) {
			return New(o[OptionVolumeGroup], Options{Log: env.Log})
		}})
}

// Spec names the lvm2 backend of volume group vg.
func Spec(vg string) backend.Spec {
	return backend.Spec{Kind: Kind, Options: map[string]string{OptionVolumeGroup: vg}}
}

// Kind implements backend.Backend.
func (b *Backend) Kind() string { return Kind }

// Capabilities implements backend.Backend: thin LVs are block devices
// with a virtual size.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{Block: true, FixedSize: true}
}

// VG is the volume group the backend works in.
func (b *Backend) VG() string { return b.vg }

// Runner is the command runner, for its invocation counts.
func (b *Backend) Runner() *Runner { return b.run }

func (b *Backend) lvPath(name string) string { return b.vg + "/" + name }

// lvs reports the LVs of the whole VG (name "") or of one LV. One
// invocation; ErrNotFound (wrapped) when the VG or the LV does not exist.
func (b *Backend) lvs(ctx context.Context, name string) ([]LV, error) {
	target := b.vg
	if name != "" {
		target = b.lvPath(name)
	}
	out, err := b.run.Run(ctx, "lvs", append(reportArgs(lvFields), target)...)
	if err != nil {
		return nil, err
	}
	lvs, err := parseLVs(out)
	if err != nil {
		return nil, fmt.Errorf("lvs %s: %w", target, err)
	}
	return lvs, nil
}

// lv reports one LV.
func (b *Backend) lv(ctx context.Context, name string) (*LV, error) {
	lvs, err := b.lvs(ctx, name)
	if err != nil {
		return nil, err
	}
	for i := range lvs {
		if lvs[i].Name == name {
			return &lvs[i], nil
		}
	}
	return nil, fmt.Errorf("logical volume %s: %w", b.lvPath(name), backend.ErrNotFound)
}

// VGInfo reports the volume group: size, free space, extent size. One
// invocation.
func (b *Backend) VGInfo(ctx context.Context) (*VG, error) {
	out, err := b.run.Run(ctx, "vgs", append(reportArgs(vgFields), b.vg)...)
	if err != nil {
		return nil, fmt.Errorf("volume group %s: %w", b.vg, err)
	}
	vgs, err := parseVGs(out)
	if err != nil {
		return nil, fmt.Errorf("vgs %s: %w", b.vg, err)
	}
	for i := range vgs {
		if vgs[i].Name == b.vg {
			return &vgs[i], nil
		}
	}
	return nil, fmt.Errorf("volume group %s: %w", b.vg, backend.ErrNotFound)
}

// FreeSpace is the volume group's free space in bytes: what Extend can
// give pools. One invocation (vgs).
func (b *Backend) FreeSpace(ctx context.Context) (int64, error) {
	vg, err := b.VGInfo(ctx)
	if err != nil {
		return 0, err
	}
	return vg.Free, nil
}

// CreatePool implements backend.Backend: a thin-pool LV that errors at once
// when full (--errorwhenfull y) instead of queueing writes for a minute,
// with the thresholds recorded as tags.
func (b *Backend) CreatePool(ctx context.Context, spec backend.PoolSpec) error {
	if err := mock.ValidatePool(spec.Name); err != nil {
		return err
	}
	if spec.Size <= 0 {
		return fmt.Errorf("create pool %s: size %d: must be positive", b.lvPath(spec.Name), spec.Size)
	}
	// "--thinpool NAME -L SIZE" is lvcreate's thin-pool form (the type is
	// implied). lvm2 2.03.16 (Debian 12) refuses --errorwhenfull together
	// with an explicit "--type thin-pool", but takes it in this form, so
	// the pool is made in one call.
	args := []string{
		"--thinpool", spec.Name, "-L", bytesArg(spec.Size),
		"--errorwhenfull", "y",
		// The new LV is empty by definition: wipe whatever signature an
		// earlier LV left on those extents instead of asking.
		"--yes",
	}
	if spec.MetadataSize > 0 {
		args = append(args, "--poolmetadatasize", bytesArg(spec.MetadataSize))
	}
	warn, refuse := spec.WarnPercent, spec.RefusePercent
	if warn <= 0 {
		warn = backend.DefaultWarnPercent
	}
	if refuse <= 0 {
		refuse = backend.DefaultRefusePercent
	}
	args = append(args, "--addtag", tagWarn+formatPercent(warn), "--addtag", tagRefuse+formatPercent(refuse))
	args = append(args, b.vg)
	if _, err := b.run.Run(ctx, "lvcreate", args...); err != nil {
		return fmt.Errorf("create pool %s: %w", b.lvPath(spec.Name), err)
	}
	b.log.Info("created thin pool", "pool", spec.Name, "size", spec.Size, "metadata_size", spec.MetadataSize)
	return nil
}

// RemovePool implements backend.Backend. It removes only a thin pool with no
// thin volume. lvremove is run without -f so that, should a volume be made
// in the pool between the check and the removal (mock shares the pool),
// lvm2 asks before taking it along, reads no answer, and refuses.
func (b *Backend) RemovePool(ctx context.Context, pool string) error {
	lvs, err := b.lvs(ctx, "")
	if err != nil {
		return fmt.Errorf("remove pool %s: %w", b.lvPath(pool), err)
	}
	p := findLV(lvs, pool)
	if p == nil {
		return fmt.Errorf("remove pool %s: %w", b.lvPath(pool), backend.ErrNotFound)
	}
	if !p.Attr.IsThinPool() {
		return fmt.Errorf("remove pool %s: not a thin pool (lv_attr %s): %w", b.lvPath(pool), p.Attr, backend.ErrNotFound)
	}
	var users []string
	for _, lv := range lvs {
		if lv.Pool == pool {
			users = append(users, lv.Name)
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("remove pool %s: it holds %d volume(s) (%s): %w", b.lvPath(pool), len(users), strings.Join(users, ", "), backend.ErrNotEmpty)
	}
	// An active LV makes lvremove ask too; deactivate first.
	if p.Active {
		if _, err := b.run.Run(ctx, "lvchange", "-an", b.lvPath(pool)); err != nil {
			return fmt.Errorf("remove pool %s: deactivate: %w", b.lvPath(pool), err)
		}
	}
	if _, err := b.run.Run(ctx, "lvremove", b.lvPath(pool)); err != nil {
		return fmt.Errorf("remove pool %s: %w", b.lvPath(pool), err)
	}
	b.log.Info("removed thin pool", "pool", pool)
	return nil
}

// Pools implements backend.Backend: the thin pools of the volume group.
func (b *Backend) Pools(ctx context.Context) ([]string, error) {
	lvs, err := b.lvs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list pools of %s: %w", b.vg, err)
	}
	var pools []string
	for _, lv := range lvs {
		if lv.Attr.IsThinPool() {
			pools = append(pools, lv.Name)
		}
	}
	return pools, nil
}

// Scan implements backend.Backend with one lvs over the volume group.
func (b *Backend) Scan(ctx context.Context, pool string) (*backend.PoolReport, error) {
	lvs, err := b.lvs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", b.lvPath(pool), err)
	}
	r, err := b.poolReport(lvs, pool)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", b.lvPath(pool), err)
	}
	return r, nil
}

// poolReport builds the report of pool from a full lvs of the VG.
func (b *Backend) poolReport(lvs []LV, pool string) (*backend.PoolReport, error) {
	p := findLV(lvs, pool)
	if p == nil || !p.Attr.IsThinPool() {
		if p != nil {
			return nil, fmt.Errorf("%s is not a thin pool (lv_attr %s): %w", p.Name, p.Attr, backend.ErrNotFound)
		}
		return nil, fmt.Errorf("no thin pool %s: %w", pool, backend.ErrNotFound)
	}
	r := &backend.PoolReport{
		Name:            pool,
		Backend:         Kind,
		SizeBytes:       p.Size,
		MetadataLabel:   "metadata",
		Health:          p.Attr.PoolHealth(),
		WarnPercent:     backend.DefaultWarnPercent,
		RefusePercent:   backend.DefaultRefusePercent,
		Scanned:         time.Now(),
		DataPercent:     max(p.DataPercent, 0),
		MetadataPercent: max(p.MetadataPercent, 0),
	}
	// An inactive pool has no usage figures (lvm2 prints ""); they read 0
	// until something activates it. That is not a health problem.
	r.UsedBytes = int64(float64(p.Size) * r.DataPercent / 100)
	for _, t := range p.Tags {
		if v, ok := strings.CutPrefix(t, tagWarn); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
				r.WarnPercent = f
			}
		}
		if v, ok := strings.CutPrefix(t, tagRefuse); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
				r.RefusePercent = f
			}
		}
	}
	for i := range lvs {
		lv := &lvs[i]
		// Only thin volumes of this pool: mock's rule, lv_attr[0] == 'V'
		// and pool_lv == pool. Anything else in the VG is not reported and
		// so can never be acted on.
		if !lv.Attr.IsThinVolume() || lv.Pool != pool {
			continue
		}
		r.Volumes = append(r.Volumes, b.volume(lv))
	}
	return r, nil
}

func findLV(lvs []LV, name string) *LV {
	for i := range lvs {
		if lvs[i].Name == name {
			return &lvs[i]
		}
	}
	return nil
}

// volume turns an lvs row into the model's Volume (without Device).
func (b *Backend) volume(lv *LV) backend.Volume {
	v := backend.Volume{
		Name:        lv.Name,
		Pool:        lv.Pool,
		Origin:      lv.Origin,
		VirtualSize: lv.Size,
		Created:     lv.Created,
		Tags:        lv.Tags,
		Thin:        lv.Attr.IsThinVolume(),
		Active:      lv.Active,
	}
	if lv.DataPercent > 0 {
		v.UsedBytes = int64(float64(lv.Size) * lv.DataPercent / 100)
	}
	return v
}

// Create implements backend.Backend: "lvcreate --type thin", active, then
// one lvs for the device numbers. Two invocations.
func (b *Backend) Create(ctx context.Context, pool, name string, virtualSize int64) (*backend.Volume, error) {
	if err := validateLV(name); err != nil {
		return nil, err
	}
	if virtualSize <= 0 {
		return nil, fmt.Errorf("create %s: virtual size %d: must be positive", b.lvPath(name), virtualSize)
	}
	_, err := b.run.Run(ctx, "lvcreate",
		"--type", "thin", "--thinpool", pool, "-V", bytesArg(virtualSize), "-n", name,
		"--setactivationskip", "n", "-ay", b.vg)
	if err != nil {
		return nil, fmt.Errorf("create thin volume %s in pool %s: %w", b.lvPath(name), pool, err)
	}
	b.log.Info("created thin volume", "pool", pool, "lv", name, "virtual_size", virtualSize)
	return b.activeVolume(ctx, pool, name)
}

// Snapshot implements backend.Backend. A plain snapshot is inactive and skipped
// by activation, as LVM makes thin snapshots by default (and as mock's
// snapshots are). With opts.Activate it is made active in the same
// lvcreate, which is what mock does for a working volume; then one lvs
// finds its device: two invocations in all.
func (b *Backend) Snapshot(ctx context.Context, pool, origin, name string, opts backend.SnapshotOptions) (*backend.Volume, error) {
	if err := validateLV(name); err != nil {
		return nil, err
	}
	if err := validateLV(origin); err != nil {
		return nil, err
	}
	for _, t := range opts.Tags {
		if err := ValidateTag(t); err != nil {
			return nil, err
		}
	}
	// Say the skip flag outright so an lvm.conf with
	// auto_set_activation_skip = 0 does not change what we make.
	args := []string{"-s", "-n", name}
	if opts.Activate {
		args = append(args, "--setactivationskip", "n", "-ay")
	} else {
		args = append(args, "--setactivationskip", "y")
	}
	for _, t := range opts.Tags {
		args = append(args, "--addtag", t)
	}
	args = append(args, b.lvPath(origin))
	if _, err := b.run.Run(ctx, "lvcreate", args...); err != nil {
		return nil, fmt.Errorf("snapshot %s as %s: %w", b.lvPath(origin), name, err)
	}
	b.log.Info("created thin snapshot", "pool", pool, "origin", origin, "lv", name, "active", opts.Activate)
	if opts.Activate {
		return b.activeVolume(ctx, pool, name)
	}
	lv, err := b.lv(context.WithoutCancel(ctx), name)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", b.lvPath(name), err)
	}
	if lv.Pool != pool {
		return nil, fmt.Errorf("snapshot %s landed in pool %q, not %q (origin %s is in that pool)", b.lvPath(name), lv.Pool, pool, origin)
	}
	v := b.volume(lv)
	return &v, nil
}

// activeVolume reports a volume that was just activated and finds its
// device: one lvs, then sysfs. It is the end of an operation that has
// happened, so the caller's cancellation no longer stops it: the caller
// gets the volume it made rather than an error about a volume that exists.
func (b *Backend) activeVolume(ctx context.Context, pool, name string) (*backend.Volume, error) {
	ctx = context.WithoutCancel(ctx)
	lv, err := b.lv(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s after activation: %w", b.lvPath(name), err)
	}
	if !lv.Attr.IsThinVolume() || lv.Pool != pool {
		return nil, fmt.Errorf("%s is not a thin volume of pool %s (lv_attr %s, pool %q)", b.lvPath(name), pool, lv.Attr, lv.Pool)
	}
	if lv.Major < 0 || lv.Minor < 0 {
		return nil, fmt.Errorf("%s is not active after activation (lv_attr %s)", b.lvPath(name), lv.Attr)
	}
	v := b.volume(lv)
	dev, err := b.dev.node(ctx, lv.Major, lv.Minor)
	if err != nil {
		return nil, fmt.Errorf("device of %s: %w", b.lvPath(name), err)
	}
	v.Mount = backend.Mount{Source: dev}
	v.Active = true
	return &v, nil
}

// Activate implements backend.Backend. One lvs when the volume is active
// already; otherwise lvchange -ay -K (which overrides the skip flag of a
// snapshot) and a second lvs.
func (b *Backend) Activate(ctx context.Context, pool, name string) (*backend.Volume, error) {
	lv, err := b.lv(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("activate %s: %w", b.lvPath(name), err)
	}
	if !lv.Attr.IsThinVolume() || lv.Pool != pool {
		return nil, fmt.Errorf("activate %s: not a thin volume of pool %s: %w", b.lvPath(name), pool, backend.ErrNotFound)
	}
	if lv.Major >= 0 && lv.Minor >= 0 {
		v := b.volume(lv)
		dev, err := b.dev.node(ctx, lv.Major, lv.Minor)
		if err != nil {
			return nil, fmt.Errorf("device of %s: %w", b.lvPath(name), err)
		}
		v.Mount, v.Active = backend.Mount{Source: dev}, true
		return &v, nil
	}
	if _, err := b.run.Run(ctx, "lvchange", "-ay", "-K", b.lvPath(name)); err != nil {
		return nil, fmt.Errorf("activate %s: %w", b.lvPath(name), err)
	}
	return b.activeVolume(ctx, pool, name)
}

// Remove implements backend.Backend. It removes the LV only after lvs shows it
// is a thin volume of pool: nothing else in the volume group is touched.
func (b *Backend) Remove(ctx context.Context, pool, name string) error {
	lv, err := b.lv(ctx, name)
	if err != nil {
		return fmt.Errorf("remove %s: %w", b.lvPath(name), err)
	}
	if !lv.Attr.IsThinVolume() || lv.Pool != pool {
		return fmt.Errorf("remove %s: not a thin volume of pool %s (lv_attr %s, pool %q), left alone: %w",
			b.lvPath(name), pool, lv.Attr, lv.Pool, backend.ErrNotFound)
	}
	if _, err := b.run.Run(ctx, "lvremove", "-f", b.lvPath(name)); err != nil {
		return fmt.Errorf("remove %s: %w", b.lvPath(name), err)
	}
	b.log.Info("removed thin volume", "pool", pool, "lv", name)
	return nil
}

var _ backend.Renamer = (*Backend)(nil)

// Rename implements backend.Renamer with one lvrename. An active LV is
// renamed in place, device-mapper device and all: its device number, and
// so the /dev/dm-N node the Manager mounted, stay, and a mount on it stays
// mounted. The Manager renames only volumes its records hold as its own
// in pool, so there is no lvs first (Remove's check): a hand-over is on
// the path a user waits on.
func (b *Backend) Rename(ctx context.Context, pool, oldName, newName string) error {
	if err := validateLV(oldName); err != nil {
		return err
	}
	if err := validateLV(newName); err != nil {
		return err
	}
	if _, err := b.run.Run(ctx, "lvrename", b.vg, oldName, newName); err != nil {
		return fmt.Errorf("rename %s to %s: %w", b.lvPath(oldName), newName, err)
	}
	b.log.Info("renamed thin volume", "pool", pool, "lv", oldName, "to", newName)
	return nil
}

// Extend grows pool's data space by step bytes from the volume group's
// free space (the Manager's autoextend). It refuses, wrapping ErrNoRoom,
// when the volume group has less than step free. Two invocations (vgs,
// lvextend).
func (b *Backend) Extend(ctx context.Context, pool string, step int64) error {
	if step <= 0 {
		return fmt.Errorf("extend %s: step %d: must be positive", b.lvPath(pool), step)
	}
	vg, err := b.VGInfo(ctx)
	if err != nil {
		return fmt.Errorf("extend %s: %w", b.lvPath(pool), err)
	}
	// lvm2 rounds the step up to whole extents.
	need := step
	if vg.ExtentSize > 0 {
		need = (step + vg.ExtentSize - 1) / vg.ExtentSize * vg.ExtentSize
	}
	if vg.Free < need {
		return fmt.Errorf("extend %s by %d bytes: volume group %s has %d bytes free: %w",
			b.lvPath(pool), need, b.vg, vg.Free, ErrNoRoom)
	}
	if _, err := b.run.Run(ctx, "lvextend", "-L", "+"+bytesArg(step), b.lvPath(pool)); err != nil {
		return fmt.Errorf("extend %s: %w", b.lvPath(pool), err)
	}
	b.log.Info("extended thin pool", "pool", pool, "step", need, "vg_free_before", vg.Free)
	return nil
}

// bytesArg is a size for lvm2's -L/-V: a byte count with the "b" unit.
func bytesArg(n int64) string { return strconv.FormatInt(n, 10) + "b" }

func formatPercent(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
