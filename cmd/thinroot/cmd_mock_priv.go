package main

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Who runs thinroot mock, and how it gets the privilege it needs.
//
// Farms run mock as an unprivileged member of the group mock (kojid's
// kojibuilder, copr's mockbuilder), and mock elevates itself through a
// set-uid wrapper that checks the group. thinroot mock does the same: the
// binary installed set-uid root (or run as root) checks that the real
// uid's user is in the group mock, becomes root entirely, keeps only
// mock's short list of the caller's environment, and runs the build
// itself, as a child of the farm's process. The daemon's socket is not
// used here: a farm cancels a build by signalling the process tree it
// started (kojid walks /proc for the descendants of its task, copr's
// cancel signals a process group, a pty hang-up reaches mock as
// SIGHUP), which reaches a process and its sandbox, never a daemon's
// build; and mock's --chroot and --shell hand the caller's stdin and
// stdout to the command. README.md and thinroot(1) say the same.

// mockGroup is the group whose members may run thinroot mock, as mock's.
// Only a test build changes it (cmd_mock_testgroup.go).
var mockGroup = "mock"

// mockKeepEnv is the caller's environment a set-uid run keeps (mock's
// consolehelper list, plus the terminal's and thinroot's own settings).
var mockKeepEnv = []string{"COLUMNS", "SSH_AUTH_SOCK", "http_proxy", "ftp_proxy", "https_proxy", "no_proxy", "MOCK_TRACE_LOG",
	"TERM", "LANG", "LC_ALL"}

// mockCaller is the user thinroot mock works for.
type mockCaller struct {
	uid    int    // the caller's uid: the build user's uid
	gid    int    // the mock group's gid (-1: no such group)
	name   string // the caller's user name ("" when unknown)
	home   string // the caller's home directory
	setuid bool   // started set-uid by an unprivileged caller
}

// mockPrivilege finds the caller and takes root's privilege for good:
// a set-uid run checks the caller's membership of the mock group first.
// Run as root, SUDO_UID names the caller, as for mock.
func mockPrivilege() (mockCaller, error) {
	ruid, euid := os.Getuid(), os.Geteuid()
	c := mockCaller{uid: ruid, gid: -1}
	if g, err := user.LookupGroup(mockGroup); err == nil {
		c.gid, _ = strconv.Atoi(g.Gid)
	}
	if euid != 0 {
		return c, &cliError{code: 2, msg: fmt.Sprintf("thinroot mock needs root's privilege and uid %d has none", ruid),
			hint: "install it set-uid root for the group " + mockGroup + " (install -o root -g " + mockGroup + " -m 4750 thinroot /usr/bin/mock) and add the user to that group, or run it as root"}
	}
	if ruid != 0 {
		if c.gid < 0 {
			return c, &cliError{code: 1, msg: "there is no group " + mockGroup + " on this host",
				hint: "create it (groupadd -r " + mockGroup + ") and add the build farm's user to it"}
		}
		if !inGroup(c.gid) {
			return c, &cliError{code: 1, msg: fmt.Sprintf("uid %d is not a member of the group %s", ruid, mockGroup),
				hint: "add the user to it (usermod -aG " + mockGroup + " USER) and log in again; members may run thinroot mock"}
		}
		if err := becomeRoot(); err != nil {
			return c, fmt.Errorf("take root's privilege: %w", err)
		}
		c.setuid = true
	} else if s := os.Getenv("SUDO_UID"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			c.uid = n
		}
	}
	if u, err := user.LookupId(strconv.Itoa(c.uid)); err == nil {
		c.name, c.home = u.Username, u.HomeDir
	}
	if c.setuid {
		cleanEnv(c.home)
	}
	return c, nil
}

// inGroup tells whether the calling process has gid as its real or a
// supplementary group: what its login (or kojid's setgroups) gave it,
// not what the group database says today.
func inGroup(gid int) bool {
	if os.Getgid() == gid {
		return true
	}
	gs, err := os.Getgroups()
	return err == nil && slices.Contains(gs, gid)
}

// becomeRoot sets every uid and gid to root's (on every thread), so that
// what runs next (the sandbox, the package manager, mount) is plainly
// root's, as after mock's wrapper.
func becomeRoot() error {
	// syscall's (not x/sys/unix's raw Setgroups) change every thread.
	if err := syscall.Setgroups([]int{0}); err != nil {
		return err
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return err
	}
	return syscall.Setresuid(0, 0, 0)
}

// cleanEnv keeps only mockKeepEnv and thinroot's own settings of the
// caller's environment, with a fixed PATH and the caller's HOME.
func cleanEnv(home string) {
	keep := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(mockKeepEnv, k) || strings.HasPrefix(k, "THINROOT_") {
			keep[k] = v
		}
	}
	os.Clearenv()
	for k, v := range keep {
		os.Setenv(k, v)
	}
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if home != "" {
		os.Setenv("HOME", home)
	}
}
