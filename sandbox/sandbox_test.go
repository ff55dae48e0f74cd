package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/procs"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Main()
	os.Exit(testguard.Main(m))
}

// busyboxRoot bootstraps a root in a plain directory (no volumes needed
// to test the sandbox itself).
func busyboxRoot(t *testing.T) string {
	t.Helper()
	lvmtest.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	cmd := exec.Command("/bin/sh", lvmtest.BootstrapScript(t))
	cmd.Env = append(os.Environ(), "ROOT="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	return root
}

func run(t *testing.T, ctx context.Context, spec sandbox.Spec) (string, int) {
	t.Helper()
	cmd, err := sandbox.Command(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return out.String(), code
}

func TestIdentityAndNamespaces(t *testing.T) {
	root := busyboxRoot(t)
	out, code := run(t, context.Background(), sandbox.Spec{Root: root, UID: 1000, GID: 1000, Hostname: "buildhost",
		Argv: []string{"/bin/sh", "-c", `id -u; id -g; hostname; ls /proc | grep -c '^[0-9]*$'; echo $$; ls /dev; touch /tmp/x && echo tmp-ok`}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Fields(out)
	if len(lines) < 5 || lines[0] != "1000" || lines[1] != "1000" || lines[2] != "buildhost" {
		t.Fatalf("identity: %q", out)
	}
	// init, the shell, ls and grep: a handful, never the host's processes.
	if n, _ := strconv.Atoi(lines[3]); n > 6 {
		t.Fatalf("the build sees %d processes: not in its own pid namespace", n)
	}
	// The sandbox's init is pid 1 and its runtime threads take a few pids.
	if pid, _ := strconv.Atoi(lines[4]); pid > 32 {
		t.Fatalf("the build's shell has pid %d, want a small pid in a new namespace", pid)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "tmp-ok"} {
		if !strings.Contains(out, d) {
			t.Errorf("missing %s in:\n%s", d, out)
		}
	}
	// Nothing of it leaks into the host's mount table.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), root) {
		t.Fatalf("sandbox mounts leaked to the host:\n%s", mi)
	}
}

func TestExitStatusAndBinds(t *testing.T) {
	root := busyboxRoot(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "input"), []byte("hello"), 0o644)
	res := t.TempDir()
	os.Chown(res, 1000, 1000)
	out, code := run(t, context.Background(), sandbox.Spec{Root: root, UID: 1000, GID: 1000, Dir: "/builddir",
		Binds: []sandbox.Bind{{Source: src, Target: "/builddir/source", ReadOnly: true}, {Source: res, Target: "/builddir/results"}},
		Argv:  []string{"/bin/sh", "-c", `cat source/input > results/out; if touch source/nope 2>/dev/null; then echo WRITABLE; fi; exit 3`}})
	if code != 3 {
		t.Fatalf("exit %d, want 3: %s", code, out)
	}
	if strings.Contains(out, "WRITABLE") {
		t.Fatal("the source is writable inside the build")
	}
	if b, _ := os.ReadFile(filepath.Join(res, "out")); string(b) != "hello" {
		t.Fatalf("result %q", b)
	}
	out, code = run(t, context.Background(), sandbox.Spec{Root: root, UID: 1000, GID: 1000, Argv: []string{"no-such-command"}})
	if code != 127 || !strings.Contains(out, "not found") {
		t.Fatalf("missing command: %d %q", code, out)
	}
}

func TestNetwork(t *testing.T) {
	root := busyboxRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "reached") }))
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	// busybox's wget -T crashes; nc needs no timeout: in a build's own
	// network namespace the connection is refused at once.
	script := `printf 'GET / HTTP/1.0\r\n\r\n' | nc ` + host + " " + port + " || echo unreachable"
	out, _ := run(t, context.Background(), sandbox.Spec{Root: root, UID: 1000, GID: 1000, Argv: []string{"/bin/sh", "-c", script}})
	if strings.Contains(out, "reached") || !strings.Contains(out, "unreachable") {
		t.Fatalf("a build without network reached the host's loopback: %q", out)
	}
	out, _ = run(t, context.Background(), sandbox.Spec{Root: root, UID: 1000, GID: 1000, Network: true, Argv: []string{"/bin/sh", "-c", script}})
	if !strings.Contains(out, "reached") {
		t.Fatalf("a build with network could not reach the host: %q", out)
	}
	// Its own loopback is up without network.
	out, _ = run(t, context.Background(), sandbox.Spec{Root: root, UID: 1000, GID: 1000,
		Argv: []string{"/bin/sh", "-c", "(echo pong | nc -l -p 7777 &); sleep 0.3; nc 127.0.0.1 7777 </dev/null"}})
	if !strings.Contains(out, "pong") {
		t.Fatalf("loopback inside a build without network: %q", out)
	}
}

// Cancelling kills every process of the build, including ones it left in
// the background, and its mounts go with its namespace.
func TestCancelKillsEverything(t *testing.T) {
	root := busyboxRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	mark := fmt.Sprintf("THINROOT_TEST_MARK=%d", time.Now().UnixNano())
	cmd, err := sandbox.Command(ctx, sandbox.Spec{Root: root, UID: 1000, GID: 1000, Env: []string{mark},
		Argv: []string{"/bin/sh", "-c", "sleep 1000 & setsid sleep 1001 & sleep 1002"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The sandbox's init and the three sleeps (the shell may exec the last).
	lvmtest.WaitFor(t, 10*time.Second, "the build's sleeps", func() bool { return len(procs.Marked(mark)) >= 4 })
	cancel()
	cmd.Wait()
	lvmtest.WaitFor(t, 10*time.Second, "every process of the build to die", func() bool { return len(procs.Marked(mark)) == 0 })
}

// A build's mount namespace holds its own root and nothing else of the
// host. A copy of the host's other mounts (other workdirs, pools, a base
// being bootstrapped) would keep those filesystems alive, and their loop
// devices attached, after the host unmounts them, for as long as the
// build runs.
func TestHoldsNoHostMounts(t *testing.T) {
	root := busyboxRoot(t)
	img := filepath.Join(t.TempDir(), "other.img")
	if out, err := exec.Command("mkfs.ext4", "-q", img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	dev, err := loop.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := mount.Device(dev.Path, other, "ext4", ""); err != nil {
		t.Fatal(err)
	}
	dev.Close() // the mount holds the autoclear device now
	defer mount.Unmount(other, true)
	res := t.TempDir()
	cmd, err := sandbox.Command(context.Background(), sandbox.Spec{Root: root, UID: 0, GID: 0,
		Binds: []sandbox.Bind{{Source: res, Target: "/res"}},
		Argv:  []string{"/bin/sh", "-c", `touch /res/started; sleep 5`}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lvmtest.WaitFor(t, 10*time.Second, "the build to start", func() bool {
		_, err := os.Stat(filepath.Join(res, "started"))
		return err == nil
	})
	if err := mount.Unmount(other, false); err != nil {
		t.Fatal(err)
	}
	lvmtest.WaitFor(t, 3*time.Second, "the other filesystem's loop device to detach", func() bool {
		_, attached := loop.Attached()[img]
		return !attached
	})
}
