package mockcfg

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		unit string
		want int64
	}{
		{"8G", "b", 8 << 30}, {"8g", "b", 8 << 30}, {"512", "b", 512}, {"512", "m", 512 << 20},
		{"1.5T", "b", 3 << 39}, {"100k", "b", 100 << 10}, {"2 M", "b", 2 << 20}, {"4s", "b", 2048},
		{"7b", "m", 7}, {"1p", "b", 1 << 50}, {" 3G ", "b", 3 << 30},
	} {
		got, err := parseSize(tc.in, tc.unit)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q, %s) = %d, %v; want %d", tc.in, tc.unit, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "G", "8GB", "-1G", "+1G", "1e3", "0x10", "8X", "lots", "9999999999E", "NaN", "inf"} {
		if _, err := ParseSize(bad); err == nil || !strings.Contains(err.Error(), "invalid size") {
			t.Errorf("ParseSize(%q) = %v, want an invalid size error", bad, err)
		}
	}
}

func TestThinrootBusybox(t *testing.T) {
	l := &Loader{ConfigDir: "../testdata/configs", Home: t.TempDir()}
	names, err := l.List()
	if err != nil || !reflect.DeepEqual(names, []string{"busybox", "busybox-lvm", "debian-bookworm", "testdist-x86_64"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
	c, err := l.Load("busybox")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	if st.Root != "busybox" || st.TargetArch != "x86_64" || st.Releasever != "1" || st.Dist != "bb1" ||
		st.PackageManager != "dnf" || st.Basedir != "/var/lib/mock" || st.UniqueExt != "" ||
		!strings.Contains(st.DnfConf, "user_agent=Mock (busybox; x86_64)") || st.ChrootSetupCmd != nil {
		t.Errorf("settings = %+v", st)
	}
	tr := st.Thinroot
	if tr.Backend != "file" || tr.PoolSize != 4<<30 || tr.Network ||
		!reflect.DeepEqual(tr.Bootstrap, []string{"/bin/sh", "../bootstrap/busybox.sh"}) ||
		!reflect.DeepEqual(tr.Build, []string{"/bin/sh", "/builddir/source/build.sh"}) {
		t.Errorf("thinroot = %+v", tr)
	}
	if st.LVMRootEnable || st.LVM.PoolName != "mockbuild" || !st.LVM.CheckSize || st.LVM.Filesystem != "ext4" || st.LVM.Size != 2<<30 ||
		st.LVM.MkfsCommand != "mkfs.ext4" || st.LVM.SleepTime != 1 {
		t.Errorf("lvm = %+v", st.LVM)
	}

	c, err = l.Load("busybox-lvm")
	if err != nil {
		t.Fatal(err)
	}
	if st, err = c.Thinroot(); err != nil {
		t.Fatal(err)
	}
	want := LVMRootOpts{VolumeGroup: "thinroot-test", Size: 1 << 30, PoolName: "thinroot-test-pool",
		CheckSize: true, Filesystem: "ext4", MkfsCommand: "mkfs.ext4", MkfsArgs: []string{"-q"}, SleepTime: 1}
	if !st.LVMRootEnable || !reflect.DeepEqual(st.LVM, want) || st.Thinroot.Backend != "lvm2" || st.Root != "busybox-lvm" {
		t.Errorf("settings = %+v", st)
	}
}

func TestThinrootDefaultsAndErrors(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": `
config_opts['root'] = 'x'
config_opts['unique-ext'] = 'try1'
config_opts['rpmbuild_networking'] = True
config_opts['plugin_conf']['lvm_root_enable'] = True
del config_opts['plugin_conf']['lvm_root_opts']['pool_name']
config_opts['plugin_conf']['lvm_root_opts'].update(size=2048, poolmetadatasize='64m', filesystem='xfs', mount_options='noatime', umount_root=True, sleep_time=0.5, check_size=False)
config_opts['thinroot'] = {'pool_dir': '/srv/pool', 'custom': [1]}
`}, "x")
	st, err := c.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.ChrootSetupCmd; !reflect.DeepEqual(got, []string{"groupinstall", "buildsys-build"}) {
		t.Errorf("chroot_setup_cmd = %v (mock's default tuple)", got)
	}
	want := LVMRootOpts{Size: 2048 << 20, PoolMetadataSize: 64 << 20, PoolName: "mock.x", Filesystem: "xfs",
		MkfsCommand: "mkfs.xfs", MountOptions: "noatime", UmountRoot: true, SleepTime: 0.5}
	if !reflect.DeepEqual(st.LVM, want) {
		t.Errorf("lvm = %+v\nwant %+v", st.LVM, want)
	}
	tr := st.Thinroot
	if tr.Backend != "lvm2" || !tr.Network || tr.PoolDir != "/srv/pool" || !reflect.DeepEqual(tr.Extra, map[string]any{"custom": List{int64(1)}}) || st.UniqueExt != "try1" {
		t.Errorf("thinroot = %+v", tr)
	}

	c = mustLoadTree(t, map[string]string{"x.cfg": `
config_opts['target_arch'] = 'x86_64'
config_opts['plugin_conf']['lvm_root_opts']['size'] = '8 gigs'
config_opts['thinroot'] = {'backend': 'zfs', 'bootstrap': 'sh -c x', 'network': 'yes'}
`}, "x")
	_, err = c.Thinroot()
	var e *Error
	if err == nil || !errors.As(err, &e) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{
		"config_opts['root'] must be present",
		// nested assignments are not tracked: the error names the config file
		`x.cfg: config_opts['plugin_conf']['lvm_root_opts']['size']: invalid size "8 gigs"`,
		`x.cfg:4: config_opts['thinroot']['backend']: is "zfs", want "lvm2", "file" or "btrfs"`,
		"config_opts['thinroot']['bootstrap']: is a string, want a list of strings",
		"config_opts['thinroot']['network']: is a string, want True or False",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}

// The btrfs backend is a thinroot backend a config names like the others,
// with the same pool keys as the file backend.
func TestBtrfsBackend(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"b.cfg": `
config_opts['root'] = 'fedora-41-x86_64'
config_opts['target_arch'] = 'x86_64'
config_opts['thinroot'] = {'backend': 'btrfs', 'pool_dir': '/home/mock-pool', 'pool_size': '40G'}
`}, "b")
	st, err := c.Thinroot()
	if err != nil {
		t.Fatal(err)
	}
	if tr := st.Thinroot; tr.Backend != "btrfs" || tr.PoolDir != "/home/mock-pool" || tr.PoolSize != 40<<30 {
		t.Fatalf("thinroot = %+v", tr)
	}
}

func TestJSON(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['t'] = ('a', None, 1.5, {1: 'int key'})\nconfig_opts['big'] = 1180591620717411303424\n"}, "x")
	a, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.JSON()
	if string(a) != string(b) {
		t.Error("JSON is not deterministic")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(a, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"t":                `["a",null,1.5,{"1":"int key"}]`,
		"big":              "1180591620717411303424",
		"chroot_setup_cmd": `["groupinstall","buildsys-build"]`,
		"dnf.conf":         "",
	} {
		var got any
		if want == "" {
			if _, ok := m[k]; ok {
				t.Errorf("%s present", k)
			}
			continue
		}
		_ = json.Unmarshal(m[k], &got)
		compact, _ := json.Marshal(got)
		if k == "big" {
			compact = []byte(strings.TrimSpace(string(m[k])))
		}
		if string(compact) != want {
			t.Errorf("%s = %s, want %s", k, compact, want)
		}
	}
	c = mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['f'] = [float('inf'), float('nan'), 1.0]\n"}, "x")
	js, err := c.JSON()
	if err != nil || !strings.Contains(string(js), `"f": [
    "inf",
    "nan",
    1
  ]`) {
		t.Errorf("non-finite floats: %v\n%s", err, js)
	}
	if !strings.Contains(string(a), `"ssl_copied_ca_trust_dirs": [`) {
		t.Error("tuples inside lists must be arrays")
	}
}
