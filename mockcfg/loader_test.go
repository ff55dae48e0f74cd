package mockcfg

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// order records, in config_opts['order'], each file that ran.
func orderFiles(dir string) map[string]string {
	line := func(n string) string { return "config_opts['order'] = config_opts.get('order', []) + ['" + n + "']\n" }
	return map[string]string{
		"site-defaults.cfg":  line("site") + "config_opts['who'] = 'site'\nconfig_opts['basedir'] = '/site'\n",
		"chroot-aliases.cfg": line("aliases") + "config_opts['who'] = 'aliases'\n",
		"x.cfg":              line("etc") + "config_opts['root'] = 'x'\nconfig_opts['who'] = 'etc'\n",
		"sub/y.cfg":          line("sub") + "config_opts['root'] = 'y'\n",
	}
}

func TestLoadOrder(t *testing.T) {
	etc := writeTree(t, orderFiles(""))
	home := writeTree(t, map[string]string{
		".config/mock/x.cfg": "config_opts['order'] = config_opts.get('order', []) + ['user-x']\nconfig_opts['root'] = 'x'\nconfig_opts['who'] = 'user-x'\n",
		".mock/user.cfg":     "config_opts['order'] += ['legacy-user']\n",
		".config/mock.cfg":   "config_opts['order'] += ['user']\nconfig_opts['who'] = 'user'\n",
	})
	l := &Loader{ConfigDir: etc, Home: home}

	c, err := l.Load("x")
	if err != nil {
		t.Fatal(err)
	}
	// ~/.config/mock/x.cfg wins over CONFIGDIR/x.cfg; defaults, site,
	// aliases, config, ~/.mock/user.cfg, ~/.config/mock.cfg.
	want := List{"site", "aliases", "user-x", "legacy-user", "user"}
	if got := mustGet(t, c, "order"); !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	if got := mustGet(t, c, "who"); got != "user" {
		t.Errorf("who = %v", got)
	}
	if got := mustGet(t, c, "basedir"); got != "/site" {
		t.Errorf("basedir = %v (site-defaults overrides the default)", got)
	}
	if got := mustGet(t, c, "resultdir"); got != "/site/x/result" {
		t.Errorf("resultdir = %v (default template rendered with the site basedir)", got)
	}
	if c.File() != filepath.Join(home, ".config/mock/x.cfg") || c.Name() != "x" {
		t.Errorf("file %s name %s", c.File(), c.Name())
	}

	// A name ending in .cfg is a path; the config dir still provides
	// site-defaults and chroot-aliases.
	c, err = l.Load(filepath.Join(etc, "x.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	want = List{"site", "aliases", "etc", "legacy-user", "user"}
	if got := mustGet(t, c, "order"); !reflect.DeepEqual(got, want) || c.Name() != "x" {
		t.Errorf("order = %v name %s", got, c.Name())
	}
	if got := mustGet(t, c, "chroot_name"); got != "x" {
		t.Errorf("chroot_name = %v", got)
	}

	// A name with a directory is looked up under the config dir (eol/...).
	if c, err = l.Load("sub/y"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "root"); got != "y" {
		t.Errorf("root = %v", got)
	}

	// UserConfig replaces ~/.config/mock.cfg.
	l.UserConfig = filepath.Join(home, "other.cfg")
	if err := os.WriteFile(l.UserConfig, []byte("config_opts['who'] = 'other'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = l.Load("x"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "who"); got != "other" {
		t.Errorf("who = %v", got)
	}
}

func TestLoadMissingFilesAreSkipped(t *testing.T) {
	// Neither site-defaults.cfg nor chroot-aliases.cfg nor any user file.
	c := mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\n"}, "x")
	if got := mustGet(t, c, "basedir"); got != "/var/lib/mock" {
		t.Errorf("basedir = %v", got)
	}
}

func TestLoadNotFound(t *testing.T) {
	_, err := loadTree(t, map[string]string{
		"chroot-aliases.cfg": "config_opts['no-config']['epel-9'] = {'alternatives': {'alma+epel-9': {}, 'rocky+epel-9': {}}}\n",
	}, "epel-9-x86_64")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	for _, want := range []string{`non-existing mock config "epel-9-x86_64"`, "alternatives: alma+epel-9-x86_64, rocky+epel-9-x86_64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
}

func TestList(t *testing.T) {
	etc := writeTree(t, map[string]string{
		"site-defaults.cfg":  "",
		"chroot-aliases.cfg": "",
		"b.cfg":              "",
		"a.cfg":              "",
		"templates/t.tpl":    "",
		"eol/old.cfg":        "",
		"notes.txt":          "",
	})
	home := writeTree(t, map[string]string{".config/mock/c.cfg": "", ".config/mock/a.cfg": ""})
	got, err := (&Loader{ConfigDir: etc, Home: home}).List()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	// No user dir is fine; no config dir is an error.
	if _, err := (&Loader{ConfigDir: etc, Home: t.TempDir()}).List(); err != nil {
		t.Error(err)
	}
	if _, err := (&Loader{ConfigDir: filepath.Join(etc, "nope"), Home: home}).List(); err == nil {
		t.Error("want an error for a missing config dir")
	}
}

func TestAliases(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": `
config_opts['root'] = 'x'
config_opts['yum.conf'] = 'a'
config_opts['dnf5.conf'] += 'b'
config_opts['dnf4.conf'] += 'c'
config_opts['dnf_install_command'] = 'install dnf'
config_opts['dnf_common_opts'] += ['--x']
config_opts['system_yum_command'] = '/host/yum'
config_opts['system_dnf5_command'] = '/host/dnf5'
config_opts['system_dnf_command'] = '/host/dnf'
config_opts['system_microdnf_command'] = '/host/microdnf'
config_opts['in'] = 'yum.conf' in config_opts and 'dnf_command' in config_opts
config_opts['get'] = config_opts.get('dnf5.conf')
config_opts.update({'dnf_disable_plugins': []})
config_opts['keys_have_alias'] = 'yum.conf' in config_opts.keys()
# the Jinja context has the stored names only
config_opts['tpl'] = '[{{ dnf_command }}][{{ dnf4_command }}]'
`}, "x")
	for k, want := range map[string]any{
		"dnf.conf":                "abc",
		"dnf4_install_command":    "install dnf",
		"yum_system_command":      "/host/yum",
		"dnf5_system_command":     "/host/dnf5",
		"dnf4_system_command":     "/host/dnf",
		"microdnf_system_command": "/host/microdnf",
		"in":                      true,
		"get":                     "abc",
		"keys_have_alias":         false,
		"tpl":                     "[][/usr/bin/dnf-3]",
		"dnf4_disable_plugins":    List{},
		"dnf4_common_opts":        List{"--setopt=deltarpm=False", "--setopt=allow_vendor_change=yes", "--allowerasing", "--x"},
	} {
		if got := mustGet(t, c, k); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	for _, alias := range []string{"yum.conf", "dnf_command", "system_dnf_command"} {
		if _, ok := c.Values()[alias]; ok {
			t.Errorf("alias %s stored as a key", alias)
		}
	}
	// Get resolves a first-level alias, like config_opts[...].
	if v, _ := c.Get("yum.conf"); v != "abc" {
		t.Errorf("Get(yum.conf) = %v", v)
	}
	// Deleting through an alias fails in mock (deletion does not resolve).
	_, err := loadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\ndel config_opts['yum.conf']\n"}, "x")
	if err == nil || !strings.Contains(err.Error(), "x.cfg:2") {
		t.Errorf("del alias: got %v", err)
	}
}

func TestMacroCheck(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['macros']['_without_percent'] = '1'\nconfig_opts['macros']['%none'] = None\n"}, "x")
	m := mustGet(t, c, "macros").(Dict)
	if _, ok := m["%_without_percent"]; !ok {
		t.Errorf("macros = %v: want %%_without_percent", m)
	}
	if v, ok := m["%none"]; !ok || v != nil {
		t.Errorf("macros = %v: want %%none None", m)
	}
	if m["%_buildhost"] != "localhost" {
		t.Errorf("%%_buildhost = %v", m["%_buildhost"])
	}
	for _, bad := range []string{"config_opts['macros']['%a b'] = '1'", "config_opts['macros']['%empty'] = ''"} {
		_, err := loadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\n" + bad + "\n"}, "x")
		if err == nil || !strings.Contains(err.Error(), "bad macros") {
			t.Errorf("%s: got %v", bad, err)
		}
	}
}

func TestDerivedArches(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['target_arch'] = '{{ arch }}'\nconfig_opts['arch'] = 'i686'\nconfig_opts['repo_arch_map'] = {'i686': 'i386'}\n"}, "x")
	if got := mustGet(t, c, "rpmbuild_arch"); got != "i686" {
		t.Errorf("rpmbuild_arch = %v", got)
	}
	if got := mustGet(t, c, "repo_arch"); got != "i386" {
		t.Errorf("repo_arch = %v", got)
	}
	c = mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['repo_arch'] = 'noarch'\nconfig_opts['rpmbuild_arch'] = 'i586'\n"}, "x")
	if got := mustGet(t, c, "repo_arch"); got != "noarch" {
		t.Errorf("repo_arch = %v", got)
	}
	if got := mustGet(t, c, "rpmbuild_arch"); got != "i586" {
		t.Errorf("rpmbuild_arch = %v", got)
	}
}

func TestUseBootstrapContainer(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['use_bootstrap_container'] = False\n"}, "x")
	if got := mustGet(t, c, "use_bootstrap"); got != false {
		t.Errorf("use_bootstrap = %v", got)
	}
}

func TestStarlarkConstructs(t *testing.T) {
	// What mock cannot do but Starlark can, and what Starlark adds on top
	// of the Python subset, still works: recursion, globals in functions.
	c := mustLoadTree(t, map[string]string{"x.cfg": `
config_opts['root'] = 'x'
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
config_opts['fact'] = fact(6)
config_opts['set'] = sorted(set([3, 1, 3]))
config_opts['comp'] = [x * 2 for x in range(3) if x]
config_opts['lambda'] = (lambda v: v + 1)(1)
config_opts['envdict'] = dict(a=1)
config_opts['set_value'] = set(['only'])
config_opts['func'] = fact
`}, "x")
	for k, want := range map[string]any{
		"fact": int64(720), "set": List{int64(1), int64(3)}, "comp": List{int64(2), int64(4)},
		"lambda": int64(2), "envdict": Dict{"a": int64(1)}, "set_value": Set{"only"}, "func": Opaque("<function fact>"),
	} {
		if got := mustGet(t, c, k); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	// A runaway loop is an error, not a hang.
	_, err := loadTree(t, map[string]string{"x.cfg": "while True:\n    pass\n"}, "x")
	if err == nil || !strings.Contains(err.Error(), "x.cfg:") {
		t.Errorf("runaway loop: %v", err)
	}
}

func TestConcurrentLoads(t *testing.T) {
	l := &Loader{ConfigDir: "testdata/mock", Home: t.TempDir()}
	done := make(chan error)
	for n := 0; n < 4; n++ {
		go func() {
			_, err := l.Load("distro+epel-41-x86_64")
			done <- err
		}()
	}
	for n := 0; n < 4; n++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
