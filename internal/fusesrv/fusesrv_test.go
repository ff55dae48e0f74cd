package fusesrv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/testguard"
)

// The tests re-execute the test binary as a FUSE server (serverEnv) or
// as the watchdog.
const serverEnv = "THINROOT_FUSESRV_TEST_SERVER"

func TestMain(m *testing.M) {
	WatchdogMain()
	if dir := os.Getenv(serverEnv); dir != "" {
		serveWedging(dir)
	}
	os.Exit(testguard.Main(m))
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts FUSE file systems and aborts connections")
	}
}

// root is a directory whose entry "wedge" never answers.
type root struct {
	fs.Inode
}

var _ fs.NodeLookuper = (*root)(nil)

func (r *root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == "wedge" {
		select {}
	}
	return nil, syscall.ENOENT
}

func mountDir(t *testing.T) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	testguard.Unwedge(t, mnt)
	return mnt
}

var opts = &fs.Options{MountOptions: fuse.MountOptions{DirectMount: true, Name: "fusesrvtest"}}

// The server never makes a request on its own mount: a server killed
// inside such a request stays a zombie that holds its connection, and
// every user of the mount hangs. go-fuse's own wait for a mount makes one
// (it opens a file there to learn whether the kernel polls), so it cannot
// finish while nothing serves; mountOnly finishes without any answer.
func TestMountMakesNoRequestToItself(t *testing.T) {
	needRoot(t)
	t.Run("go-fuse's WaitMount waits on its own mount", func(t *testing.T) {
		mnt := mountDir(t)
		server, err := fuse.NewServer(fs.NewNodeFS(&root{}, opts), mnt, &opts.MountOptions)
		if err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() { waited <- server.WaitMount() }()
		select {
		case err := <-waited:
			t.Fatalf("WaitMount returned (%v) with nobody serving: it made no request to its own mount", err)
		case <-time.After(500 * time.Millisecond):
		}
		go server.Serve()
		if err := testguard.Call(t, "WaitMount once served", func() error { return <-waited }); err != nil {
			t.Fatal(err)
		}
		server.Unmount()
	})
	t.Run("mountOnly needs no answer", func(t *testing.T) {
		mnt := mountDir(t)
		var server *fuse.Server
		err := testguard.CallWithin(t, "mountOnly with nobody serving", 10*time.Second, func() error {
			var err error
			server, err = mountOnly(mnt, &root{}, opts)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(fuseFds()) == 0 {
			t.Fatal("no /dev/fuse descriptor after mounting")
		}
		for _, fd := range fuseFds() {
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Fatalf("/dev/fuse descriptor %d is inherited by children (flags %#x, %v)", fd, flags, err)
			}
		}
		go server.Serve()
		out, _ := exec.Command("stat", filepath.Join(mnt, "nothing")).CombinedOutput()
		if !strings.Contains(string(out), "No such file") {
			t.Fatalf("stat through the mount: %s", out)
		}
		server.Unmount()
	})
}

// serveWedging is the child server: it mounts on dir, starts the
// watchdog unless told not to, then looks up "wedge" in its own mount
// (a request its own handler never answers) and kills itself with
// SIGKILL while that request is in flight.
func serveWedging(dir string) {
	server, err := Mount(dir, &root{}, opts)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	_ = server
	if os.Getenv("THINROOT_FUSESRV_TEST_NOWATCH") == "" {
		if err := Watch(dir); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
	}
	if os.Getenv("THINROOT_FUSESRV_TEST_PLAIN") != "" {
		os.Stdout.WriteString("serving\n")
		select {}
	}
	go os.Stat(filepath.Join(dir, "wedge"))
	time.Sleep(300 * time.Millisecond)
	os.Stdout.WriteString("wedged\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// startWedging runs serveWedging in a child and waits until it wedged
// and killed itself; done is closed once the child is reaped.
func startWedging(t *testing.T, mnt string, watch bool) (done chan struct{}) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+mnt)
	if !watch {
		cmd.Env = append(cmd.Env, "THINROOT_FUSESRV_TEST_NOWATCH=1")
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	testguard.WaitFor(t, 5*time.Second, "the server to wedge itself", func() bool {
		return strings.Contains(out.String(), "wedged")
	})
	return done
}

// A server killed while it waits in the kernel for its own mount stays a
// zombie and keeps the mount's users waiting (the hazard); with the
// watchdog, its connection is aborted at once, the users get an error and
// the server is reaped.
func TestWatchdogReleasesAKilledServer(t *testing.T) {
	needRoot(t)
	t.Run("without the watchdog the server cannot die", func(t *testing.T) {
		mnt := mountDir(t)
		done := startWedging(t, mnt, false)
		select {
		case <-done:
			t.Fatal("the server was reaped without its connection being aborted: the hazard is gone, so is this test's premise")
		case <-time.After(2 * time.Second):
		}
		if !testguard.AbortMount(mnt) {
			t.Fatal("no connection to abort")
		}
		testguard.WaitFor(t, 5*time.Second, "the server to be reaped after the abort", func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
	})
	t.Run("with the watchdog", func(t *testing.T) {
		mnt := mountDir(t)
		done := startWedging(t, mnt, true)
		testguard.WaitFor(t, 2*time.Second, "the watchdog to release the server", func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
		err := testguard.Call(t, "stat on the dead mount", func() error {
			_, err := os.Stat(filepath.Join(mnt, "x"))
			return err
		})
		if !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
			t.Fatalf("stat on the dead mount: %v, want ENOTCONN or ECONNABORTED", err)
		}
	})
}

// A connection number is reused by the next mount once a connection
// ends. The watchdog of a server that is gone must never abort the new
// mount that got its number.
func TestWatchdogLeavesAReusedConnectionAlone(t *testing.T) {
	needRoot(t)
	reused := 0
	for i := 0; i < 5; i++ {
		mntA, mntB := mountDir(t), mountDir(t)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), serverEnv+"="+mntA, "THINROOT_FUSESRV_TEST_PLAIN=1")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testguard.WaitFor(t, 5*time.Second, "server A", func() bool { return strings.Contains(out.String(), "serving") })
		connA, err := Connection(mntA)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Process.Kill()
		cmd.Wait()
		// A's dead mount is detached (as the next server on a mount point
		// does), which frees its number, and B mounts at once, before A's
		// watchdog looks again.
		unix.Unmount(mntA, unix.MNT_DETACH)
		server, err := Mount(mntB, &root{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		connB, _ := Connection(mntB)
		if connB == connA {
			reused++
		}
		time.Sleep(3 * pollEvery)
		err = testguard.Call(t, "stat on mount B", func() error {
			_, err := os.Stat(filepath.Join(mntB, "nothing"))
			return err
		})
		server.Unmount()
		if !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("round %d: mount B (connection %d, A had %d) answered %v, want ENOENT: A's watchdog aborted it\n%s",
				i, connB, connA, err, out.String())
		}
	}
	t.Logf("mount B reused A's connection number in %d of 5 rounds", reused)
	if reused == 0 {
		t.Fatal("no round reused the connection number: the test did not exercise the reuse")
	}
}
