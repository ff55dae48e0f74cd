package sandbox_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/sandbox"
)

// What mock mounts in a buildroot: /sys read-only, and with the network
// the host's resolv.conf and hosts, read-only and only inside.
func TestSysAndResolver(t *testing.T) {
	root := busyboxRoot(t)
	ctx := testguard.Context(t)
	out, code := run(t, ctx, sandbox.Spec{Root: root, UID: 0, GID: 0, Network: true, HostResolver: true,
		Argv: []string{"/bin/sh", "-c", `ls /sys/kernel >/dev/null && echo sys-ok; touch /sys/x 2>/dev/null || echo sys-ro;
cat /etc/hosts; echo x >> /etc/hosts 2>/dev/null || echo hosts-ro`}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"sys-ok", "sys-ro", "hosts-ro"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, out)
		}
	}
	host, _ := os.ReadFile("/etc/hosts")
	if !strings.Contains(out, strings.TrimSpace(string(host))) {
		t.Errorf("the root does not see the host's /etc/hosts:\n%s", out)
	}
	// The root's own files are untouched: an empty hosts file was made
	// for the bind, the host's content never landed in it.
	if b, err := os.ReadFile(filepath.Join(root, "etc", "hosts")); err == nil && len(b) > 0 && string(b) == string(host) {
		t.Errorf("the host's hosts file was copied into the root")
	}
	// Without HostResolver the root keeps its own.
	out, _ = run(t, ctx, sandbox.Spec{Root: root, UID: 0, GID: 0, Network: true,
		Argv: []string{"/bin/sh", "-c", `wc -c < /etc/hosts`}})
	if strings.TrimSpace(out) != "0" {
		t.Errorf("without HostResolver /etc/hosts has %s bytes, want the root's empty one", strings.TrimSpace(out))
	}
}

// An Outside command runs on the host's file system with the root's /proc,
// /sys and /dev mounted for it (a package manager with --installroot), and
// the host's mounts under DetachUnder are gone from its namespace, except
// the root and the Keep paths.
func TestOutside(t *testing.T) {
	root := busyboxRoot(t)
	ctx := testguard.Context(t)
	// Two mounts under a "basedir": one another workdir, which must be
	// detached, and one holding a kept path.
	base := t.TempDir()
	other, kept := filepath.Join(base, "other"), filepath.Join(base, "kept")
	for _, d := range []string{other, kept} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(t.TempDir(), d, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		defer mount.Unmount(d, true)
	}
	os.WriteFile(filepath.Join(kept, "marker"), []byte("kept"), 0o644)
	script := `set -e
test -e "$R/proc/self/status" && echo root-proc
test -c "$R/dev/null" && echo root-dev
test -d "$R/sys/kernel" && echo root-sys
test -x /bin/sh && echo host-fs
grep -q " $O " /proc/self/mountinfo && echo OTHER-STILL-MOUNTED || echo other-detached
cat "$K/marker"; echo
id -u`
	out, code := run(t, ctx, sandbox.Spec{Root: root, Outside: true, Network: true,
		DetachUnder: []string{base}, Keep: []string{filepath.Join(kept, "marker")},
		Env:  []string{"PATH=/usr/bin:/bin", "R=" + root, "O=" + other, "K=" + kept},
		Argv: []string{"/bin/sh", "-c", script}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"root-proc", "root-dev", "root-sys", "host-fs", "other-detached", "kept", "\n0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// Nothing of it is mounted in the host's namespace afterwards.
	if m := testguard.Mounted(root); len(m) != 0 {
		t.Errorf("mounts left in the root: %v", m)
	}
	if ok, _ := mount.IsMountpoint(other); !ok {
		t.Error("the host lost the other mount: the detach was not private")
	}
}

// Stdin reaches the command when asked for; otherwise it reads nothing.
func TestStdin(t *testing.T) {
	root := busyboxRoot(t)
	ctx := testguard.Context(t)
	for _, c := range []struct {
		spec sandbox.Spec
		want string
	}{
		{sandbox.Spec{Stdin: true}, "hello from stdin"},
		{sandbox.Spec{}, ""},
	} {
		spec := c.spec
		spec.Root, spec.Argv = root, []string{"/bin/cat"}
		// The sandbox hands on its own standard input, the caller's.
		r, w, _ := os.Pipe()
		w.WriteString("hello from stdin")
		w.Close()
		old := os.Stdin
		os.Stdin = r
		cmd, err := sandbox.Command(ctx, spec)
		os.Stdin = old
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.Output()
		r.Close()
		if err != nil {
			t.Fatalf("stdin %v: %v", spec.Stdin, err)
		}
		if string(out) != c.want {
			t.Errorf("stdin %v: read %q, want %q", spec.Stdin, out, c.want)
		}
	}
}
