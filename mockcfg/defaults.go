package mockcfg

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"
)

// MockVersion is the mock release whose built-in defaults this package
// follows; it is also the value of config_opts['version'].
const MockVersion = "6.7"

// Short constructors keep the defaults table readable.
func s(v string) starlark.Value { return starlark.String(v) }
func i(v int) starlark.Value    { return starlark.MakeInt(v) }
func b(v bool) starlark.Value   { return starlark.Bool(v) }

var none = starlark.None

func l(vs ...starlark.Value) starlark.Value { return starlark.NewList(vs) }
func t(vs ...starlark.Value) starlark.Value { return starlark.Tuple(vs) }
func ls(vs ...string) starlark.Value {
	out := make([]starlark.Value, len(vs))
	for n, v := range vs {
		out[n] = starlark.String(v)
	}
	return starlark.NewList(out)
}

// d builds a dict from alternating keys and values.
func d(kv ...any) starlark.Value {
	out := starlark.NewDict(len(kv) / 2)
	for n := 0; n+1 < len(kv); n += 2 {
		_ = out.SetKey(starlark.String(kv[n].(string)), kv[n+1].(starlark.Value))
	}
	return out
}

// host facts that mock reads from the running system; variables so that
// tests can pin them.
var (
	hostUID  = os.Getuid
	hostArch = func() string {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return ""
		}
		return unix.ByteSliceToString(u.Machine[:])
	}
	mockGID = func() (int, bool) {
		g, err := user.LookupGroup("mock")
		if err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(g.Gid)
		return n, err == nil
	}
	hostName = sync.OnceValue(getfqdn)
	runUUID  = func() string {
		var u [16]byte
		_, _ = rand.Read(u[:])
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	}
)

// pluginList is mock's built-in plugin order.
var pluginList = []string{"tmpfs", "root_cache", "yum_cache", "mount", "bind_mount",
	"ccache", "selinux", "package_state", "chroot_scan",
	"lvm_root", "compress_logs", "sign", "pm_request",
	"hw_info", "procenv", "showrc", "rpkg_preprocessor",
	"rpmautospec", "buildroot_lock", "export_buildroot_image",
	"unbreq", "expand_spec", "system_monitor"}

// setDefaults fills config_opts with mock's built-in defaults, the values
// mock has before it reads any file. Host-dependent values (uid, arch, the
// mock group, a run id) are taken from this host as mock takes them.
// Installation paths that only make sense inside mock (plugin_dir) are left
// out. It is long because it is one table: mock's defaults in the order
// mock's own code sets them, to be read and compared side by side.
func setDefaults(o *optsDict) {
	set := o.set
	set("config_paths", l())
	set("version", s(MockVersion))
	set("basedir", s("/var/lib/mock"))
	set("resultdir", s("{{basedir}}/{{root}}/result"))
	set("rootdir", s("{{basedir}}/{{root}}/root"))
	set("cache_topdir", s("/var/cache/mock"))
	set("clean", b(true))
	set("check", b(true))
	set("post_install", b(false))
	set("chroothome", s("/builddir"))
	set("log_config_file", s("logging.ini"))
	set("rpmbuild_timeout", i(0))
	set("host_arch", s(hostArch()))
	set("chrootuid", i(hostUID()))
	if gid, ok := mockGID(); ok {
		set("chrootgid", i(gid))
	}
	set("chrootgroup", s("mock"))
	set("chrootuser", s("mockbuild"))
	set("build_log_fmt_name", s("unadorned"))
	set("root_log_fmt_name", s("detailed"))
	set("state_log_fmt_name", s("state"))
	set("online", b(true))
	set("isolation", none)
	set("use_nspawn", none)
	set("rpmbuild_networking", b(false))
	set("nspawn_args", ls("--capability=cap_ipc_lock"))
	set("use_container_host_hostname", b(true))

	set("use_bootstrap", b(true))
	set("use_bootstrap_image", b(true))
	set("bootstrap_image", s("fedora:latest"))
	set("bootstrap_image_skip_pull", b(false))
	set("bootstrap_image_ready", b(false))
	set("bootstrap_image_fallback", b(true))
	set("bootstrap_image_keep_getting", i(120))
	set("bootstrap_image_pull_timeout", i(120))
	set("bootstrap_image_assert_digest", none)

	set("use_buildroot_image", b(false))
	set("buildroot_image", none)
	set("buildroot_image_skip_pull", b(false))
	set("buildroot_image_ready", b(false))
	set("buildroot_image_fallback", b(false))
	set("buildroot_image_keep_getting", i(120))
	set("buildroot_image_pull_timeout", i(120))
	set("buildroot_image_assert_digest", none)

	set("internal_dev_setup", b(true))
	set("cleanup_on_success", b(true))
	set("cleanup_on_failure", b(true))
	set("exclude_from_homedir_cleanup", ls("build/SOURCES", ".bash_history", ".bashrc"))
	set("createrepo_on_rpms", b(false))
	set("createrepo_command", s("/usr/bin/createrepo_c -d -q -x *.src.rpm"))
	set("tar_binary", s("/bin/tar"))
	set("tar", s("gnutar"))
	set("backup_on_clean", b(false))
	set("backup_base_dir", s("{{basedir}}/backup"))
	set("redhat_subscription_required", b(false))
	set("ssl_ca_bundle_path", none)
	set("ssl_copied_ca_trust_dirs", l(
		t(s("/etc/pki/ca-trust"), s("/etc/pki/ca-trust")),
		t(s("/usr/share/pki/ca-trust-source"), s("/usr/share/pki/ca-trust-source"))))
	set("ssl_extra_certs", none)

	set("plugins", ls(pluginList...))
	set("plugin_conf", d(
		"ccache_enable", b(false),
		"ccache_opts", d(
			"max_cache_size", s("4G"),
			"compress", none,
			"dir", s("{{cache_topdir}}/{{root}}/ccache/u{{chrootuid}}/"),
			"hashdir", b(true),
			"debug", b(false),
			"show_stats", b(false)),
		"yum_cache_enable", b(true),
		"yum_cache_opts", d(
			"max_age_days", i(30),
			"max_metadata_age_days", i(30),
			"online", b(true)),
		"root_cache_enable", b(true),
		"root_cache_opts", d(
			"age_check", b(true),
			"max_age_days", i(15),
			"dir", s("{{cache_topdir}}/{{root}}/root_cache/"),
			"compress_program", s("pigz"),
			"decompress_program", none,
			"exclude_dirs", ls("./proc", "./sys", "./dev", "./tmp/ccache", "./var/cache/yum", "./var/cache/dnf", "./var/log"),
			"extension", s(".gz")),
		"bind_mount_enable", b(true),
		"bind_mount_opts", d("dirs", l(), "create_dirs", b(false)),
		"mount_enable", b(true),
		"mount_opts", d("dirs", l()),
		"tmpfs_enable", b(false),
		"tmpfs_opts", d(
			"required_ram_mb", i(900),
			"max_fs_size", none,
			"mode", s("0755"),
			"keep_mounted", b(false)),
		"selinux_enable", b(true),
		"selinux_opts", d(),
		"package_state_enable", b(true),
		"package_state_opts", d("available_pkgs", b(false), "installed_pkgs", b(true)),
		"buildroot_lock_enable", b(false),
		"buildroot_lock_opts", d(),
		"pm_request_enable", b(false),
		"pm_request_opts", d(),
		"lvm_root_enable", b(false),
		"lvm_root_opts", d("pool_name", s("mockbuild")),
		"chroot_scan_enable", b(false),
		"chroot_scan_opts", d(
			"regexes", ls(`^[^k]?core(\.\d+)?$`, `\.log$`),
			"only_failed", b(true),
			"write_tar", b(false)),
		"sign_enable", b(false),
		"sign_opts", d("cmd", s("rpmsign"), "opts", s("--addsign %(rpms)s")),
		"hw_info_enable", b(true),
		"hw_info_opts", d(),
		"procenv_enable", b(false),
		"procenv_opts", d(),
		"showrc_enable", b(false),
		"showrc_opts", d(),
		"compress_logs_enable", b(false),
		"compress_logs_opts", d("command", s("gzip")),
		"rpkg_preprocessor_enable", b(false),
		"rpkg_preprocessor_opts", d(
			"requires", ls("preproc-rpmspec"),
			"cmd", s("/usr/bin/preproc-rpmspec %(source_spec)s --output %(target_spec)s")),
		"rpmautospec_enable", b(false),
		"rpmautospec_opts", d(
			"requires", ls("rpmautospec"),
			"cmd_base", ls("/usr/bin/rpmautospec", "process-distgit")),
		"export_buildroot_image_enable", b(false),
		"export_buildroot_image_opts", d(),
		"unbreq_enable", b(false),
		"unbreq_opts", d("exclude_accessed_files", l()),
		"expand_spec_enable", b(false),
		"expand_spec_opts", d("rpmspec_opts", l()),
		"system_monitor_enable", b(false),
		"system_monitor_opts", d("interval", i(2)),
	))

	set("environment", d(
		"TERM", s("vt100"),
		"SHELL", s("/bin/bash"),
		"HOME", s("/builddir"),
		"HOSTNAME", s("mock"),
		"PATH", s("/usr/bin:/bin:/usr/sbin:/sbin"),
		"PROMPT_COMMAND", s(`printf "\033]0;<mock-chroot>\007"`),
		"PS1", s(`<mock-chroot> \s-\v\$ `),
		"LANG", s("C.UTF-8"),
	))

	set("scm", b(false))
	set("scm_opts", d(
		"method", s("git"),
		"cvs_get", s("cvs -d /srv/cvs co SCM_BRN SCM_PKG"),
		"git_get", s("git clone SCM_BRN git://localhost/SCM_PKG.git SCM_PKG"),
		"svn_get", s("svn co file:///srv/svn/SCM_PKG/SCM_BRN SCM_PKG"),
		"distgit_get", s("rpkg clone -a --branch SCM_BRN SCM_PKG SCM_PKG"),
		"distgit_src_get", s("rpkg sources"),
		"spec", s("SCM_PKG.spec"),
		"int_src_dir", none,
		"ext_src_dir", s(os.DevNull),
		"write_tar", b(false),
		"git_timestamps", b(false),
		"exclude_vcs", b(true),
	))

	set("use_host_resolv", b(false))
	set("chroot_setup_cmd", t(s("groupinstall"), s("buildsys-build")))
	set("repo_arch", none)
	set("repo_arch_map", d())
	set("target_arch", s("i386"))
	set("releasever", none)
	set("rpmbuild_arch", none)
	set("dnf_vars", d())
	set("yum_builddep_opts", l())
	set("yum_common_opts", l())
	set("update_before_build", b(true))
	set("priorities.conf", s("\n[main]\nenabled=0"))
	set("rhnplugin.conf", s("\n[main]\nenabled=0"))
	set("subscription-manager.conf", s(""))
	set("more_buildreqs", d())
	set("nosync", b(false))
	set("nosync_force", b(false))
	set("files", d())
	set("macros", d(
		"%_topdir", s("/builddir/build"),
		"%_rpmfilename", s("%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"),
	))
	set("hostname", none)
	set("module_enable", l())
	set("module_install", l())
	set("module_setup_commands", l())
	set("forcearch", none)

	set("bootstrap_chroot_additional_packages", l())
	set("bootstrap_module_enable", l())
	set("bootstrap_module_install", l())
	set("bootstrap_module_setup_commands", l())

	set("no_root_shells", b(false))
	set("extra_chroot_dirs", l())

	set("package_manager", s("dnf"))
	set("package_manager_max_attempts", i(1))
	set("package_manager_attempt_delay", i(10))
	set("dynamic_buildrequires", b(true))
	set("dynamic_buildrequires_max_loops", i(10))
	set("static_buildrequires_max_loops", i(10))
	set("external_buildrequires", b(false))
	set("dev_loop_count", i(12))

	set("yum_command", s("/usr/bin/yum"))
	set("yum_system_command", s("/usr/bin/yum"))
	set("yum_install_command", s("install yum yum-utils"))
	set("yum_builddep_command", s("/usr/bin/yum-builddep"))
	set("yum_avoid_opts", d())

	set("dnf4_command", s("/usr/bin/dnf-3"))
	set("dnf4_system_command", s("/usr/bin/dnf-3"))
	set("dnf4_common_opts", ls("--setopt=deltarpm=False", "--setopt=allow_vendor_change=yes", "--allowerasing"))
	set("dnf4_install_command", s("install python3-dnf python3-dnf-plugins-core"))
	set("dnf4_disable_plugins", ls("local", "spacewalk", "versionlock"))
	set("dnf4_avoid_opts", d())

	set("dnf5_command", s("/usr/bin/dnf5"))
	set("dnf5_system_command", s("/usr/bin/dnf5"))
	set("dnf5_common_opts", ls("--setopt=deltarpm=False", "--setopt=allow_vendor_change=yes", "--allowerasing"))
	set("dnf5_install_command", s("install dnf5 dnf5-plugins"))
	set("dnf5_disable_plugins", l())
	set("dnf5_avoid_opts", d(
		"remove", ls("--allowerasing"),
		"repoquery", ls("--allowerasing"),
		"makecache", ls("--allowerasing"),
		"search", ls("--allowerasing"),
		"info", ls("--allowerasing"),
		"download", ls("--allowerasing"),
	))

	set("microdnf_command", s("/usr/bin/microdnf"))
	set("microdnf_install_command", s("dnf-install microdnf dnf dnf-plugins-core"))
	set("microdnf_builddep_command", s("/usr/bin/dnf"))
	set("microdnf_builddep_opts", l())
	set("microdnf_common_opts", l())
	set("microdnf_avoid_opts", d())

	set("rpm_command", s("/bin/rpm"))
	set("rpmbuild_command", s("/usr/bin/rpmbuild"))
	set("user_agent", s("Mock ({{ root }}; {{ target_arch }})"))
	set("opstimeout", i(0))
	set("stderr_line_prefix", s(""))
	set("chroot_additional_packages", l())
	set("additional_packages", none)
	set("no-config", d())
	set("seccomp", b(false))
	set("copy_host_users", l())
	set("use_host_shadow_utils", b(true))
	set("shadow_utils_isolation_option", s("--prefix"))
	set("qemu_user_static_mapping", d("armv7hl", s("arm"), "i686", s("i386")))
	set("oci_platform_map", d(
		"x86_64_v2", s("linux/amd64/v2"),
		"x86_64_v3", s("linux/amd64/v3"),
		"x86_64_v4", s("linux/amd64/v4"),
	))
	set("recursion_limit", i(5000))
	set("calculatedeps", none)
	set("hermetic_build", b(false))
	set("mock_run_uuid", s(runUUID()))
}

// getfqdn is Python's socket.getfqdn(), which mock uses for the
// %_buildhost macro: the first name of the host's address that has a dot,
// else the address's primary name, else the host name.
func getfqdn() string {
	h, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, h)
	if err != nil || len(addrs) == 0 {
		return h
	}
	names, err := net.DefaultResolver.LookupAddr(ctx, addrs[0])
	if err != nil || len(names) == 0 {
		return h
	}
	for _, n := range names {
		if n = strings.TrimSuffix(n, "."); strings.Contains(n, ".") {
			return n
		}
	}
	return strings.TrimSuffix(names[0], ".")
}
