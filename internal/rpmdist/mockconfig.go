package rpmdist

import (
	"os"
	"path/filepath"
	"strings"
)

// MockConfig is the text of a mock config for a buildroot of the test
// distribution at url, on thinroot's file backend with test-sized volumes.
// testdata/configs/testdist-x86_64.cfg is MockConfig("testdist-x86_64",
// "file://"+StableRepo).
func MockConfig(root, url string) string {
	conf := strings.TrimSpace(DNFConf(url))
	conf = strings.Replace(conf, "[main]\n", "[main]\nuser_agent={{ user_agent }}\n", 1)
	return `# thinroot test config: a buildroot of the test distribution ("testdist":
# Debian's packages as RPMs, built at test time by testdata/rpmdist; see
# the README there), bootstrapped as mock does it without a bootstrap
# chroot: the host's dnf with --installroot installs @buildsys-build, then
# rpmbuild runs inside the root.
#
# The host's dnf and rpm need HOME set to a directory whose .rpmmacros has
# "%_dbpath /var/lib/rpm" (Debian's rpm keeps its database in ~/.rpmdb),
# and every dnf plugin but builddep disabled; testdata/rpmdist/README.md
# has the details.
config_opts['root'] = '` + root + `'
config_opts['description'] = 'thinroot testdist ` + Releasever + ` (Debian packages as RPMs, for tests)'
config_opts['target_arch'] = 'x86_64'
config_opts['legal_host_arches'] = ('x86_64',)
config_opts['releasever'] = '` + Releasever + `'
config_opts['dist'] = 'td` + Releasever + `'
config_opts['package_manager'] = 'dnf'
config_opts['use_bootstrap'] = False
config_opts['chroot_setup_cmd'] = 'install @buildsys-build'
config_opts['dnf.conf'] = """
` + conf + `
"""
config_opts['plugin_conf']['lvm_root_opts']['size'] = '2G'

config_opts['thinroot'] = {
    'backend': 'file',
    'pool_size': '6G',
    'network': False,
}
`
}

// WriteMockConfig writes dir/<root>.cfg, a mock config for this
// distribution's repository (see MockConfig), and returns its path.
func (d *Dist) WriteMockConfig(dir, root string) (string, error) {
	p := filepath.Join(dir, root+".cfg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return p, os.WriteFile(p, []byte(MockConfig(root, d.URL)), 0o644)
}
