package fsview_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/lvm/mock"
)

// statsKeys are the figures DESIGN promises in both stats files.
var statsKeys = []string{"backend", "pool", "size_bytes", "used_bytes", "free_bytes", "data_percent",
	"metadata_percent", "thin_volumes", "configs", "snapshots", "workdirs", "spares", "warn_percent",
	"refuse_percent", "status", "updated"}

// TestUserStory is a packager's session: look around, make a workdir,
// chroot into it, snapshot it, clone the snapshot, clean up; then every
// errno the contract promises.
func TestUserStory(t *testing.T) {
	f := world(t)
	m := mountTree(t, f, nil, 200*time.Millisecond)

	// ls
	if got, want := m.names(m.Mnt), []string{"README", "builds", "configs", "pools", "workdirs"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("root lists %v, want %v", got, want)
	}
	if got := m.names(m.pool()); !reflect.DeepEqual(got, []string{"configs", "stats", "stats.json"}) {
		t.Fatalf("pool lists %v", got)
	}
	if got := m.names(m.config()); !reflect.DeepEqual(got, []string{"current", "snapshots", "state"}) {
		t.Fatalf("config lists %v", got)
	}
	if got := m.names(m.snap("postinit")); !reflect.DeepEqual(got, []string{".info", ".info.json"}) {
		t.Fatalf("postinit lists %v", got)
	}
	if got := m.names(filepath.Join(m.Mnt, "builds")); len(got) != 0 {
		t.Fatalf("builds lists %v, want nothing", got)
	}
	if !strings.Contains(m.read(filepath.Join(m.Mnt, "README")), "mkdir") {
		t.Fatal("README does not say how to make a workdir")
	}
	cl := filepath.Join(m.Mnt, "configs", f.Root)
	if tg, err := os.Readlink(cl); err != nil || tg != "../pools/"+f.Pool+"/configs/"+f.Root {
		t.Fatalf("configs/%s -> %q (%v)", f.Root, tg, err)
	}
	if got := m.names(cl); !reflect.DeepEqual(got, []string{"current", "snapshots", "state"}) {
		t.Fatalf("through configs/%s: %v", f.Root, got)
	}

	// cat and parse the stats
	text := keyValues(t, m.read(filepath.Join(m.pool(), "stats")))
	var js map[string]any
	if err := json.Unmarshal([]byte(m.read(filepath.Join(m.pool(), "stats.json"))), &js); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	for _, k := range statsKeys {
		if _, ok := text[k]; !ok {
			t.Errorf("stats lacks %s", k)
		}
		if _, ok := js[k]; !ok {
			t.Errorf("stats.json lacks %s", k)
		}
	}
	if text["backend"] != env.Name || text["pool"] != f.Pool || text["configs"] != "1" || text["snapshots"] != "1" ||
		text["workdirs"] != "0" || text["status"] != "ok" {
		t.Fatalf("stats: %v", text)
	}
	if size, _ := strconv.ParseInt(text["size_bytes"], 10, 64); size <= 0 || js["size_bytes"].(float64) != float64(size) {
		t.Fatalf("size_bytes %q in stats, %v in stats.json", text["size_bytes"], js["size_bytes"])
	}
	// One time format in the whole tree: RFC 3339, to the second.
	if u := text["updated"]; strings.Contains(u, ".") || js["updated"] != u {
		t.Fatalf("updated %q in stats, %v in stats.json: want RFC 3339 to the second in both", u, js["updated"])
	} else if _, err := time.Parse(time.RFC3339, u); err != nil {
		t.Fatalf("updated: %v", err)
	}
	if got := m.read(filepath.Join(m.config(), "state")); got != "ready\n" {
		t.Fatalf("state %q", got)
	}
	if got := m.read(filepath.Join(m.config(), "current")); got != "postinit\n" {
		t.Fatalf("current %q", got)
	}
	if info := keyValues(t, m.read(filepath.Join(m.snap("postinit"), ".info"))); info["name"] != "postinit" || info["workdirs"] != "-" ||
		info["origin"] != "bootstrap" {
		t.Fatalf(".info of postinit: %v", info)
	}

	// mkdir a workdir under postinit; it is mounted when mkdir returns
	w1 := filepath.Join(m.snap("postinit"), "w1")
	if err := os.Mkdir(w1, 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	real1 := filepath.Join(f.Basedir, f.Root+"-w1", "root")
	for _, l := range []string{m.link("w1"), filepath.Join(w1, "root")} {
		if tg, err := os.Readlink(l); err != nil || tg != real1 {
			t.Fatalf("%s -> %q (%v), want %s", l, tg, err, real1)
		}
	}
	if got := m.names(w1); !reflect.DeepEqual(got, []string{".info", ".info.json", "root", "snapshot"}) {
		t.Fatalf("workdir lists %v", got)
	}
	info := keyValues(t, m.read(filepath.Join(w1, ".info")))
	if info["state"] != "mounted" || info["snapshot"] != "postinit" || info["mountpoint"] != real1 || info["device"] == "-" {
		t.Fatalf("info: %v", info)
	}
	var wj map[string]any
	if err := json.Unmarshal([]byte(m.read(filepath.Join(w1, ".info.json"))), &wj); err != nil || wj["state"] != "mounted" ||
		wj["created"] != info["created"] || wj["ext"] != "w1" || wj["mountpoint"] != real1 {
		t.Fatalf(".info.json %v (%v), .info %v", wj, err, info)
	}

	// chroot through workdirs/, run the root's busybox, write a file
	requireRoot(t, real1)
	if got := lvmtest.Chroot(t, m.link("w1"), "cat /etc/issue; echo one > /root/mark; sync"); !strings.Contains(got, "busybox") {
		t.Fatalf("chroot: %q", got)
	}

	// snapshot it through the snapshot file
	if err := write(filepath.Join(w1, "snapshot"), "s1\n"); err != nil {
		t.Fatalf("echo s1 > snapshot: %v", err)
	}
	if got := m.names(m.snaps()); !reflect.DeepEqual(got, []string{"postinit", "s1"}) {
		t.Fatalf("snapshots %v", got)
	}
	if info := keyValues(t, m.read(filepath.Join(m.snap("s1"), ".info"))); info["origin"] != "workdir w1" || info["origin_volume"] != mock.WorkdirVolume(f.Root, "w1") {
		t.Fatalf(".info of s1: %v", info)
	}

	// a second workdir from the new snapshot sees the file
	w2 := filepath.Join(m.snap("s1"), "w2")
	if err := os.Mkdir(w2, 0o755); err != nil {
		t.Fatalf("mkdir from s1: %v", err)
	}
	if got := lvmtest.Chroot(t, m.link("w2"), "cat /root/mark"); got != "one\n" {
		t.Fatalf("w2 reads %q", got)
	}
	if got := m.names(filepath.Join(m.Mnt, "workdirs")); !reflect.DeepEqual(got, []string{f.Root + ".w1", f.Root + ".w2"}) {
		t.Fatalf("workdirs %v", got)
	}
	stats := keyValues(t, m.read(filepath.Join(m.pool(), "stats")))
	if stats["workdirs"] != "2" || stats["snapshots"] != "2" {
		t.Fatalf("stats after two workdirs and a snapshot: %v", stats)
	}

	t.Run("Errnos", func(t *testing.T) { errnoTable(t, m, w1, w2) })

	// rmdir both, then the snapshot
	for _, p := range []string{w1, w2, m.snap("s1")} {
		if err := syscall.Rmdir(p); err != nil {
			t.Fatalf("rmdir %s: %v", p, err)
		}
	}
	if got := m.names(filepath.Join(m.Mnt, "workdirs")); len(got) != 0 {
		t.Fatalf("workdirs after rmdir: %v", got)
	}
	if ok, _ := isMounted(real1); ok {
		t.Fatal("w1 still mounted after rmdir")
	}
	if got := m.names(m.snaps()); !reflect.DeepEqual(got, []string{"postinit"}) {
		t.Fatalf("snapshots after rmdir %v", got)
	}
}

// errnoTable asserts every errno of the contract, with w1 under postinit
// and w2 under s1.
func errnoTable(t *testing.T, m *mounted, w1, w2 string) {
	f := m.F
	cur := filepath.Join(m.config(), "current")
	cases := []struct {
		what  string
		do    func() error
		errno syscall.Errno
	}{
		{"mkdir of an ext that exists under the same snapshot", func() error { return os.Mkdir(w1, 0o755) }, syscall.EEXIST},
		{"mkdir of an ext that exists under another snapshot", func() error { return os.Mkdir(filepath.Join(m.snap("postinit"), "w2"), 0o755) }, syscall.EEXIST},
		{"mkdir with a bad name", func() error { return os.Mkdir(filepath.Join(m.snap("postinit"), "a.b"), 0o755) }, syscall.EINVAL},
		{"mkdir with a name starting with -", func() error { return os.Mkdir(filepath.Join(m.snap("postinit"), "-x"), 0o755) }, syscall.EINVAL},
		{"mkdir under a snapshot that does not exist", func() error { return os.Mkdir(filepath.Join(m.snap("nosuch"), "w9"), 0o755) }, syscall.ENOENT},
		{"mkdir in snapshots/", func() error { return os.Mkdir(m.snap("new"), 0o755) }, syscall.EPERM},
		{"mkdir in pools/", func() error { return os.Mkdir(filepath.Join(m.Mnt, "pools", "p"), 0o755) }, syscall.EPERM},
		{"mkdir inside a workdir", func() error { return os.Mkdir(filepath.Join(w1, "x"), 0o755) }, syscall.EPERM},
		{"rmdir postinit", func() error { return syscall.Rmdir(m.snap("postinit")) }, syscall.EPERM},
		{"rmdir a snapshot with workdirs", func() error { return syscall.Rmdir(m.snap("s1")) }, syscall.ENOTEMPTY},
		{"rmdir a workdir that does not exist", func() error { return syscall.Rmdir(filepath.Join(m.snap("postinit"), "w9")) }, syscall.ENOENT},
		{"rmdir a workdir a build holds", func() error {
			if err := f.M.Hold(f.Root, "w2", "test build"); err != nil {
				t.Fatal(err)
			}
			defer f.M.Unhold(f.Root, "w2")
			return syscall.Rmdir(w2)
		}, syscall.EBUSY},
		{"rmdir a workdir a process is in", func() error {
			sh := exec.Command("chroot", m.link("w2"), "/bin/sh", "-c", "sleep 30")
			if err := sh.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { sh.Process.Kill(); sh.Wait() }()
			time.Sleep(100 * time.Millisecond)
			return syscall.Rmdir(w2)
		}, syscall.EBUSY},
		{"rmdir pools/", func() error { return syscall.Rmdir(filepath.Join(m.Mnt, "pools")) }, syscall.EPERM},
		{"echo a snapshot that does not exist > current", func() error { return write(cur, "nosuch\n") }, syscall.ENOENT},
		{"echo two words > current", func() error { return write(cur, "s1 s1\n") }, syscall.EINVAL},
		{"echo two lines > current", func() error { return write(cur, "s1\npostinit\n") }, syscall.EINVAL},
		{"echo nothing > current", func() error { return write(cur, "\n") }, syscall.EINVAL},
		{"an oversized write to current", func() error { return write(cur, strings.Repeat("a", 300)) }, syscall.EINVAL},
		{"a bad name > current", func() error { return write(cur, "-bad\n") }, syscall.EINVAL},
		{"echo an existing snapshot > snapshot", func() error { return write(filepath.Join(w1, "snapshot"), "s1\n") }, syscall.EEXIST},
		{"echo a bad name > snapshot", func() error { return write(filepath.Join(w1, "snapshot"), "a.b\n") }, syscall.EINVAL},
		{"write to stats", func() error { return write(filepath.Join(m.pool(), "stats"), "x\n") }, syscall.EROFS},
		{"create a file", func() error { return write(filepath.Join(m.Mnt, "new"), "x\n") }, syscall.EPERM},
		{"unlink README", func() error { return os.Remove(filepath.Join(m.Mnt, "README")) }, syscall.EPERM},
		{"rename a workdir", func() error { return os.Rename(w1, filepath.Join(m.snap("postinit"), "w3")) }, syscall.EPERM},
		{"symlink", func() error { return os.Symlink("/", filepath.Join(m.Mnt, "workdirs", "x")) }, syscall.EPERM},
		{"chmod", func() error { return os.Chmod(filepath.Join(m.Mnt, "README"), 0o777) }, syscall.EPERM},
		{"chmod current", func() error { return os.Chmod(cur, 0o777) }, syscall.EPERM},
		{"truncate current to a size", func() error { return os.Truncate(cur, 3) }, syscall.EINVAL},
	}
	for _, c := range cases {
		wantErrno(t, c.what, c.do(), c.errno)
	}
	// What succeeds: switching current and back, a write without newline.
	if err := write(cur, "s1"); err != nil {
		t.Fatalf("echo -n s1 > current: %v", err)
	}
	if got := m.read(cur); got != "s1\n" {
		t.Fatalf("current after switching: %q", got)
	}
	if _, cs := f.M.State().Config(f.Root); cs.Workdir("w1") == nil || cs.Workdir("w2") == nil {
		t.Fatal("switching current removed a workdir")
	}
	if err := write(cur, "postinit\n"); err != nil {
		t.Fatal(err)
	}

	// ENOSPC needs a full pool: its own world.
	t.Run("PoolFull", testPoolFull)
}

func testPoolFull(t *testing.T) {
	f := lvmtest.NewFixture(t, env)
	// A pool that refuses new volumes at 10 %: a little data fills it. A
	// fresh btrfs counts some 230 MB of metadata chunks as used: its pool
	// is larger (sparse), so that it starts under the threshold.
	size := int64(2 << 30)
	if env.Name == "btrfs" {
		size = 8 << 30
	}
	if err := f.M.CreatePool(context.Background(), env.Spec(), backend.PoolSpec{Name: f.Pool, Size: size, WarnPercent: 5, RefusePercent: 10}); err != nil {
		t.Fatal(err)
	}
	f.Init(0)
	m := mountTree(t, f, nil, 200*time.Millisecond)
	w := filepath.Join(m.snap("postinit"), "filler")
	if err := os.Mkdir(w, 0o755); err != nil {
		t.Fatal(err)
	}
	st, _ := f.M.Refresh(context.Background())
	p := st.Pool(f.Pool)
	need := int64(float64(p.Stats.SizeBytes)*0.11) - p.Stats.UsedBytes
	if need > 0 {
		dd := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(m.link("filler"), "fill"), "bs=1M",
			"count="+strconv.FormatInt(need>>20+1, 10), "conv=fsync")
		if out, err := dd.CombinedOutput(); err != nil {
			t.Fatalf("dd: %v %s", err, out)
		}
	}
	lvmtest.WaitFor(t, 5*time.Second, "stats to say full", func() bool {
		return keyValues(t, m.read(filepath.Join(m.pool(), "stats")))["status"] == "full"
	})
	wantErrno(t, "mkdir in a full pool", os.Mkdir(filepath.Join(m.snap("postinit"), "more"), 0o755), syscall.ENOSPC)
	wantErrno(t, "snapshot in a full pool", write(filepath.Join(w, "snapshot"), "s\n"), syscall.ENOSPC)
	// Removing still works, and frees the pool.
	if err := syscall.Rmdir(w); err != nil {
		t.Fatal(err)
	}
}
