package mockcfg

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Settings is what thinroot reads from a config.
type Settings struct {
	Root           string   // config_opts['root'] (required)
	TargetArch     string   // target_arch
	Releasever     string   // releasever ("" when None)
	ChrootSetupCmd []string // chroot_setup_cmd, split as mock splits a string
	PackageManager string   // package_manager
	Basedir        string   // basedir
	UniqueExt      string   // unique-ext; "" when unset (mock then uses "head" for LVM names)
	Dist           string   // dist
	Description    string   // description
	DnfConf        string   // dnf.conf (also yum.conf, dnf4.conf, dnf5.conf)

	LVMRootEnable bool        // plugin_conf['lvm_root_enable']
	LVM           LVMRootOpts // plugin_conf['lvm_root_opts']

	Thinroot ThinrootOpts // config_opts['thinroot']
}

// LVMRootOpts are the lvm_root plugin options, with the plugin's defaults
// applied where it has them.
type LVMRootOpts struct {
	VolumeGroup string // volume_group
	// Size is the thin pool and volume size in bytes (size); 0 when unset.
	// A bare number means MiB, as lvcreate -L reads it.
	Size int64
	// PoolName is pool_name; when the key is missing altogether mock
	// uses the conf id "mock.<root>".
	PoolName    string
	CheckSize   bool   // check_size (default true)
	Filesystem  string // filesystem (default ext4)
	MkfsCommand string // mkfs_command (default mkfs.<filesystem>)
	MkfsArgs    []string
	// MountOptions is mount_options ("" when unset); mock's code reads
	// this key, its documentation says mount_opts.
	MountOptions string
	// PoolMetadataSize is poolmetadatasize in bytes; 0 when unset.
	PoolMetadataSize int64
	UmountRoot       bool    // umount_root (default false)
	SleepTime        float64 // sleep_time in seconds (default 1)
}

// ThinrootOpts are thinroot's own keys, under config_opts['thinroot'].
type ThinrootOpts struct {
	// Backend is "lvm2", "file" or "btrfs"; when unset, "lvm2" if the
	// lvm_root plugin is enabled, else "file".
	Backend string
	// PoolDir is an existing directory for the file or btrfs backend
	// ("" for a pool image thinroot makes).
	PoolDir string
	// PoolSize is the size of the pool image the file or btrfs backend
	// makes, in bytes (a number of bytes or a string such as "20G"); 0
	// when unset.
	PoolSize int64
	// Bootstrap is the argv that populates a fresh base volume.
	Bootstrap []string
	// Build is the argv a build runs in its workdir.
	Build []string
	// Network lets builds reach the network; when unset it follows
	// mock's rpmbuild_networking.
	Network bool
	// Extra holds any other keys under config_opts['thinroot'].
	Extra map[string]any
}

// Thinroot extracts what thinroot reads. It fails on a missing root and on
// values of the wrong type or form, naming the key and where it was set.
// It is long because it is a list, one key after another, each with its
// check, that all report into one error.
func (c *Config) Thinroot() (Settings, error) {
	var st Settings
	var errs []error
	str := func(dst *string, path ...string) {
		v, _, err := c.String(path...)
		if err != nil {
			errs = append(errs, err)
		}
		*dst = v
	}
	var ok bool
	var err error
	str(&st.Root, "root")
	if st.Root == "" {
		errs = append(errs, &Error{File: c.file, Msg: "option config_opts['root'] must be present in your config"})
	}
	str(&st.TargetArch, "target_arch")
	if v, ok := c.Get("releasever"); ok && v != nil {
		st.Releasever = pyStr(v) // sometimes an int in user configs
	}
	switch v, _ := c.Get("chroot_setup_cmd"); x := v.(type) {
	case nil:
	case string:
		// mock splits a string on whitespace; an empty one installs nothing
		if f := strings.Fields(x); len(f) > 0 {
			st.ChrootSetupCmd = f
		}
	default:
		if st.ChrootSetupCmd, _, err = c.Strings("chroot_setup_cmd"); err != nil {
			errs = append(errs, err)
		}
	}
	str(&st.PackageManager, "package_manager")
	str(&st.Basedir, "basedir")
	str(&st.UniqueExt, "unique-ext")
	str(&st.Dist, "dist")
	str(&st.Description, "description")
	str(&st.DnfConf, "dnf.conf")

	pc := []string{"plugin_conf"}
	st.LVMRootEnable, _ = c.Bool("plugin_conf", "lvm_root_enable")
	lo := append(pc, "lvm_root_opts")
	at := func(k string) []string { return append(append([]string(nil), lo...), k) }
	lvm := &st.LVM
	str(&lvm.VolumeGroup, at("volume_group")...)
	if lvm.Size, err = c.size(at("size"), "m"); err != nil {
		errs = append(errs, err)
	}
	if lvm.PoolMetadataSize, err = c.size(at("poolmetadatasize"), "m"); err != nil {
		errs = append(errs, err)
	}
	if _, has := c.Get(at("pool_name")...); has {
		str(&lvm.PoolName, at("pool_name")...)
	} else {
		lvm.PoolName = "mock." + st.Root
	}
	lvm.CheckSize = true
	if v, has := c.Bool(at("check_size")...); has {
		lvm.CheckSize = v
	}
	lvm.Filesystem = "ext4"
	if v, has, err := c.String(at("filesystem")...); err != nil {
		errs = append(errs, err)
	} else if has {
		lvm.Filesystem = v
	}
	lvm.MkfsCommand = "mkfs." + lvm.Filesystem
	if v, has, err := c.String(at("mkfs_command")...); err != nil {
		errs = append(errs, err)
	} else if has {
		lvm.MkfsCommand = v
	}
	if lvm.MkfsArgs, _, err = c.Strings(at("mkfs_args")...); err != nil {
		errs = append(errs, err)
	}
	str(&lvm.MountOptions, at("mount_options")...)
	lvm.UmountRoot, _ = c.Bool(at("umount_root")...)
	lvm.SleepTime = 1
	if v, has := c.Get(at("sleep_time")...); has && v != nil {
		switch x := v.(type) {
		case int64:
			lvm.SleepTime = float64(x)
		case float64:
			lvm.SleepTime = x
		default:
			errs = append(errs, c.errAt(at("sleep_time"), "is %s, want a number of seconds", typeName(v)))
		}
	}

	tr := &st.Thinroot
	tk := func(k string) []string { return []string{"thinroot", k} }
	if v, has := c.Get("thinroot"); has && v != nil {
		if _, isDict := v.(Dict); !isDict {
			errs = append(errs, c.errAt([]string{"thinroot"}, "is %s, want a dict", typeName(v)))
		}
	}
	str(&tr.Backend, tk("backend")...)
	switch tr.Backend {
	case "lvm2", "file", "btrfs":
	case "":
		tr.Backend = "file"
		if st.LVMRootEnable {
			tr.Backend = "lvm2"
		}
	default:
		errs = append(errs, c.errAt(tk("backend"), "is %q, want \"lvm2\", \"file\" or \"btrfs\"", tr.Backend))
	}
	str(&tr.PoolDir, tk("pool_dir")...)
	if tr.PoolSize, err = c.size(tk("pool_size"), "b"); err != nil {
		errs = append(errs, err)
	}
	if tr.Bootstrap, _, err = c.Strings(tk("bootstrap")...); err != nil {
		errs = append(errs, err)
	}
	if tr.Build, _, err = c.Strings(tk("build")...); err != nil {
		errs = append(errs, err)
	}
	tr.Network, _ = c.Bool("rpmbuild_networking")
	if v, has := c.Get(tk("network")...); has {
		if tr.Network, ok = v.(bool); !ok {
			errs = append(errs, c.errAt(tk("network"), "is %s, want True or False", typeName(v)))
		}
	}
	if d, isDict := c.values["thinroot"].(Dict); isDict {
		for k, v := range d {
			switch k {
			case "backend", "pool_dir", "pool_size", "bootstrap", "build", "network":
			default:
				if tr.Extra == nil {
					tr.Extra = map[string]any{}
				}
				tr.Extra[k] = v
			}
		}
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("config %s: %w", c.name, joinErrs(errs))
	}
	return st, nil
}

// joinErrs joins errors one per line, keeping them reachable by errors.As.
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return multiErr(errs)
}

type multiErr []error

func (m multiErr) Error() string {
	parts := make([]string, len(m))
	for n, e := range m {
		parts[n] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (m multiErr) Unwrap() []error { return m }

// size reads a size at path: an integer (in defUnit) or a string with an
// LVM unit. Missing or None is 0.
func (c *Config) size(path []string, defUnit string) (int64, error) {
	v, ok := c.Get(path...)
	if !ok || v == nil {
		return 0, nil
	}
	var s string
	switch x := v.(type) {
	case int64:
		s = strconv.FormatInt(x, 10)
	case *big.Int:
		s = x.String()
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		s = x
	default:
		return 0, c.errAt(path, "is %s, want a size such as \"8G\"", typeName(v))
	}
	n, err := parseSize(s, defUnit)
	if err != nil {
		return 0, c.errAt(path, "%v", err)
	}
	return n, nil
}

// ParseSize parses a size as LVM reads one: a number (fractions allowed)
// with an optional unit b (bytes), s (512-byte sectors), k, m, g, t, p or e
// (powers of 1024), in either case. A bare number is bytes.
func ParseSize(s string) (int64, error) { return parseSize(s, "b") }

var sizeUnits = map[byte]float64{
	'b': 1, 's': 512, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30,
	't': 1 << 40, 'p': 1 << 50, 'e': 1 << 60,
}

func parseSize(s, defUnit string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	unit := defUnit[0]
	if s != "" {
		last := s[len(s)-1] | 0x20 // lower case
		if _, ok := sizeUnits[last]; ok && (s[len(s)-1] < '0' || s[len(s)-1] > '9') {
			unit = last
			s = strings.TrimSpace(s[:len(s)-1])
			// LVM also accepts the "iB" spelling only in output; a
			// trailing "B" after a unit letter (e.g. "8GB") is not valid.
		}
	}
	if s == "" || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit (b, s, k, m, g, t, p, e)", in)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xXpPeEiInN_") {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit (b, s, k, m, g, t, p, e)", in)
	}
	bytes := f * sizeUnits[unit]
	if bytes >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", in)
	}
	return int64(bytes), nil
}
