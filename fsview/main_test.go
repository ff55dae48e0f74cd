package fsview_test

import (
	"bufio"
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

	"github.com/thinroot/thinroot/fsview"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/internal/testbin"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// The tests mount real trees over a real backend (lvmtest.HostEnv: the
// file backend's XFS pools, ext4 volumes and loop devices, or btrfs
// subvolumes), with chroots. They need root and skip otherwise.

var env = lvmtest.HostEnv()

func TestMain(m *testing.M) {
	probe.Main()
	lvmtest.HelperMain([]lvmtest.Env{env}, nil)
	code := testguard.Main(m)
	// The binaries tests made live outside their temp dirs (other users
	// must reach them).
	probe.Remove()
	testbin.Remove()
	os.Exit(code)
}

// treeGID is the group the test trees belong to: no user of this host is
// in it unless a test puts one there.
const treeGID = 4242

// mounted is a tree mounted for one test.
type mounted struct {
	t    testing.TB
	F    *lvmtest.Fixture
	Tree *fsview.Tree
	Mnt  string
}

// world makes a fixture with an initialized config.
func world(t testing.TB) *lvmtest.Fixture {
	t.Helper()
	f := lvmtest.NewFixture(t, env)
	f.Init(0)
	return f
}

// mountTree mounts a tree over model (the fixture's Manager when nil) and
// keeps it fresh with the given interval until the test ends.
func mountTree(t testing.TB, f *lvmtest.Fixture, model fsview.Model, refresh time.Duration) *mounted {
	t.Helper()
	if model == nil {
		model = f.M
	}
	mnt := filepath.Join(probe.PublicDir(t), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	testguard.Unwedge(t, mnt)
	tree := fsview.New(model, fsview.Options{Refresh: refresh, GID: treeGID, Log: f.Log})
	opts := tree.FuseOptions(fuse.MountOptions{DirectMount: true, AllowOther: true})
	server, err := fs.Mount(mnt, tree.Root(), opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tree.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := server.Unmount(); err != nil {
			t.Logf("unmount: %v; detaching", err)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return &mounted{t: t, F: f, Tree: tree, Mnt: mnt}
}

// Paths in the tree.
func (m *mounted) pool() string         { return filepath.Join(m.Mnt, "pools", m.F.Pool) }
func (m *mounted) config() string       { return filepath.Join(m.pool(), "configs", m.F.Root) }
func (m *mounted) snaps() string        { return filepath.Join(m.config(), "snapshots") }
func (m *mounted) snap(s string) string { return filepath.Join(m.snaps(), s) }
func (m *mounted) link(ext string) string {
	return filepath.Join(m.Mnt, "workdirs", m.F.Root+"."+ext)
}

func (m *mounted) read(p string) string {
	m.t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		m.t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func (m *mounted) names(p string) []string {
	m.t.Helper()
	ents, err := os.ReadDir(p)
	if err != nil {
		m.t.Fatalf("readdir %s: %v", p, err)
	}
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Name()
	}
	return out
}

// write does what a shell's "echo DATA > p" does: open with O_TRUNC, one
// write, close.
func write(p, data string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(data))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// keyValues parses "key: value" lines.
func keyValues(t testing.TB, text string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("line %q is not \"key: value\"", sc.Text())
		}
		kv[k] = v
	}
	return kv
}

// wantErrno checks that err carries errno.
func wantErrno(t testing.TB, what string, err error, errno syscall.Errno) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Errorf("%s: got %v, want %v (%s)", what, err, errno, probe.ErrnoName(errno))
	}
}

func thinrootBin(t testing.TB) string { return testbin.Thinroot(t, lvmtest.RepoRoot(t)) }

// cli runs the thinroot binary on the fixture's directories and pool.
func cli(t testing.TB, f *lvmtest.Fixture, args ...string) {
	t.Helper()
	cmd := exec.Command(thinrootBin(t), append(append(args, "--state-dir", f.StateDir, "--basedir", f.Basedir, "--pool", f.Pool), env.Flags()...)...)
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("thinroot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func isMounted(p string) (bool, error) { return mount.IsMountpoint(p) }

// requireRoot checks that a workdir's root holds the bootstrapped busybox
// root before chrooting into it, and says where its data came from when
// not (an empty filesystem there means the volume layer handed out the
// wrong data, not that the tree misbehaved).
func requireRoot(t testing.TB, root string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "bin", "sh")); err == nil {
		return
	}
	script := `ls -la "$1"; dev=$(awk -v m="$1" '$2 == m {print $1}' /proc/mounts); echo "device: $dev"
b=$(cat /sys/block/${dev#/dev/}/loop/backing_file 2>&1); echo "backing file: $b"
echo "image read directly:"; debugfs -R 'ls /bin' "$b" 2>&1 | head -5`
	out, _ := exec.Command("sh", "-c", script, "sh", root).CombinedOutput()
	t.Fatalf("workdir root %s has no /bin/sh:\n%s", root, out)
}
