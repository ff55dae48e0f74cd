package lvmtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/memory"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Run runs the whole suite against env's backend.
func Run(t *testing.T, env Env) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, env) })
	t.Run("WorkdirsShareSpace", func(t *testing.T) { testWorkdirsShareSpace(t, env) })
	t.Run("RestartRebuildsState", func(t *testing.T) { testRestart(t, env) })
	t.Run("TwoProcessesInitOnce", func(t *testing.T) { testTwoProcessesInit(t, env) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, env) })
	t.Run("PoolFull", func(t *testing.T) { testPoolFull(t, env) })
	t.Run("FailedInitPublishesNothing", func(t *testing.T) { testFailedInit(t, env) })
	t.Run("KilledInit", func(t *testing.T) { testKilledInit(t, env) })
	t.Run("KilledWorkdirCreate", func(t *testing.T) { testKilledWorkdirCreate(t, env) })
	t.Run("KilledOperationsKeepRecords", func(t *testing.T) { testKilledRecords(t, env) })
	t.Run("KilledUnderRunningManager", func(t *testing.T) { testKilledUnderRunning(t, env) })
	t.Run("KilledScrubOfLastConfig", func(t *testing.T) { testKilledScrubLast(t, env) })
	t.Run("TwoManagersOneConfig", func(t *testing.T) { testTwoManagers(t, env) })
	t.Run("InitBesideAnotherMountNamespace", func(t *testing.T) { testInitBesideNamespace(t, env) })
	t.Run("Scrub", func(t *testing.T) { testScrub(t, env) })
	t.Run("CurrentAndRollback", func(t *testing.T) { testCurrent(t, env) })
	t.Run("ConfigWithoutFile", func(t *testing.T) { testDiscovered(t, env) })
	t.Run("KilledInsideTheBackend", func(t *testing.T) { testKilledInBackend(t, env) })
	t.Run("Spares", func(t *testing.T) { testSpares(t, env) })
	t.Run("SparesOfADeadKeeper", func(t *testing.T) { testDeadKeeper(t, env) })
}

var ctx = context.Background()

func testLifecycle(t *testing.T, env Env) {
	f := NewFixture(t, env)
	cs := f.ConfigState(f.M, f.Root)
	if cs == nil || cs.State != lvm.StateUninitialized {
		t.Fatalf("before init: state %+v, want uninitialized", cs)
	}
	f.Init(0)
	cs = f.ConfigState(f.M, f.Root)
	if cs.State != lvm.StateReady || cs.Current != lvm.PostInit {
		t.Fatalf("after init: state %q current %q, want ready/postinit", cs.State, cs.Current)
	}
	if len(cs.Snapshots) != 1 || cs.Snapshots[0].Name != lvm.PostInit || len(cs.Workdirs) != 0 {
		t.Fatalf("after init: snapshots %+v workdirs %+v, want only postinit", cs.Snapshots, cs.Workdirs)
	}

	w1 := f.Workdir("", "w1")
	if want := filepath.Join(f.Basedir, f.Root+"-w1", "root"); w1 != want {
		t.Fatalf("workdir mounted at %s, want mock's path %s", w1, want)
	}
	if env.Real() {
		if got := Chroot(t, w1, "cat /etc/issue"); !strings.Contains(got, "thinroot busybox buildroot") {
			t.Fatalf("workdir does not hold the bootstrapped root: %q", got)
		}
		Chroot(t, w1, "echo one > /root/mark; sync")
	}
	if err := f.M.Snapshot(ctx, f.Root, "w1", "s1"); err != nil {
		t.Fatal(err)
	}
	w2 := f.Workdir("s1", "w2")
	if env.Real() {
		// Writes after the snapshot stay in w1.
		Chroot(t, w1, "echo two > /root/mark")
		if got := Chroot(t, w2, "cat /root/mark"); got != "one\n" {
			t.Fatalf("w2 from s1 reads %q, want the state at snapshot time", got)
		}
		if got := Chroot(t, w1, "cat /root/mark"); got != "two\n" {
			t.Fatalf("w1 reads %q after w2 was made", got)
		}
	}
	cs = f.ConfigState(f.M, f.Root)
	if s := cs.Snapshot("s1"); s == nil || len(s.Workdirs) != 1 || s.Workdirs[0].Ext != "w2" {
		t.Fatalf("s1 should list w2 as its workdir: %+v", s)
	}
	if w := cs.Workdir("w1"); w == nil || w.Snapshot != lvm.PostInit || !w.Mounted {
		t.Fatalf("w1: %+v, want mounted, under postinit", w)
	}
	for _, ext := range []string{"w1", "w2"} {
		if err := f.M.RemoveWorkdir(ctx, f.Root, ext); err != nil {
			t.Fatal(err)
		}
		if f.Mounted(filepath.Join(f.Basedir, f.Root+"-"+ext, "root")) {
			t.Fatalf("%s still mounted after remove", ext)
		}
	}
	if err := f.M.RemoveSnapshot(ctx, f.Root, "s1"); err != nil {
		t.Fatal(err)
	}
	st, err := f.M.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, cs = st.Config(f.Root)
	if len(cs.Workdirs) != 0 || len(cs.Snapshots) != 1 {
		t.Fatalf("after removals: %+v", cs)
	}
}

// Ten workdirs of a 200 MB root (by default) each see the root, keep their writes
// apart, and together cost little more pool space than the root alone.
func testWorkdirsShareSpace(t *testing.T, env Env) {
	requireReal(t, env)
	f := NewFixture(t, env)
	if err := f.M.EnsurePool(ctx, f.Root); err != nil {
		t.Fatal(err)
	}
	empty := poolUsed(t, f)
	pad := env.SpacePadMB
	if pad == 0 {
		pad = 200
	}
	f.Init(pad)
	one := poolUsed(t, f) - empty
	if one < int64(pad)*9/10<<20 {
		t.Fatalf("a %d MB root used only %d bytes of pool: the figures do not measure the root", pad, one)
	}
	var roots []string
	for i := 0; i < 10; i++ {
		roots = append(roots, f.Workdir("", "w"+string(rune('0'+i))))
	}
	for i, r := range roots {
		out := Chroot(t, r, "ls /usr/share/pad | wc -l; echo mine-"+string(rune('0'+i))+" > /root/own; sync")
		if strings.TrimSpace(out) != strconv.Itoa(pad) {
			t.Fatalf("workdir %d sees %q pad files, want %d", i, out, pad)
		}
	}
	for i, r := range roots {
		if got := Chroot(t, r, "cat /root/own"); got != "mine-"+string(rune('0'+i))+"\n" {
			t.Fatalf("workdir %d reads %q: writes leak between workdirs", i, got)
		}
	}
	all := poolUsed(t, f) - empty
	ratio := float64(all) / float64(one)
	t.Logf("pool used: one root %d MiB, root + 10 workdirs %d MiB, ratio %.3f", one>>20, all>>20, ratio)
	if ratio > 1.1 {
		t.Fatalf("10 workdirs cost %.3fx one root; want at most 1.1x", ratio)
	}
}

func poolUsed(t testing.TB, f *Fixture) int64 {
	t.Helper()
	exec.Command("sync").Run()
	st, err := f.M.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := st.Pool(f.Pool)
	if p == nil {
		t.Fatalf("pool %s missing", f.Pool)
	}
	return p.Stats.UsedBytes
}

// A new Manager (a restarted process) rebuilds the same picture from disk.
func testRestart(t *testing.T, env Env) {
	f := NewFixture(t, env)
	f.Init(0)
	f.Workdir("", "a")
	if err := f.M.Snapshot(ctx, f.Root, "a", "snap-a"); err != nil {
		t.Fatal(err)
	}
	f.Workdir("snap-a", "b")
	if err := f.M.SetCurrent(ctx, f.Root, lvm.DefaultExt, "snap-a"); err != nil {
		t.Fatal(err)
	}
	before, err := f.M.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := f.NewManager().State()
	_, cb := before.Config(f.Root)
	_, ca := after.Config(f.Root)
	if cb == nil || ca == nil {
		t.Fatal("config missing")
	}
	strip := func(c lvm.ConfigState) lvm.ConfigState {
		for i := range c.Snapshots {
			c.Snapshots[i].UsedBytes = 0
			for j := range c.Snapshots[i].Workdirs {
				c.Snapshots[i].Workdirs[j].UsedBytes = 0
			}
		}
		for i := range c.Workdirs {
			c.Workdirs[i].UsedBytes = 0
		}
		return c
	}
	b, a := strip(*cb), strip(*ca)
	if !reflect.DeepEqual(b, a) {
		t.Fatalf("a restarted manager sees a different picture:\nbefore %+v\nafter  %+v", b, a)
	}
	if a.Current != "snap-a" || len(a.Workdirs) != 2 || !a.Workdirs[0].Mounted {
		t.Fatalf("restarted picture is wrong: %+v", a)
	}
}

// Two OS processes initializing the same config: exactly one bootstraps,
// the other waits on the init lock and uses its postinit.
func testTwoProcessesInit(t *testing.T, env Env) {
	f := NewFixture(t, env)
	counter := filepath.Join(t.TempDir(), "bootstraps")
	f.Config.Bootstrap = append([]string{"/bin/sh", "-c", `echo $$ >> "$COUNTER"; sleep 1; exec "$@"`, "sh"}, f.Config.Bootstrap...)
	f.Config.BootstrapEnv = []string{"COUNTER=" + counter}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := f.helperCmd(Job{Op: "init", Configs: []lvm.Config{f.Config}}, "")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i] = string(out)
			if err != nil {
				errs[i] = errors.New(err.Error() + ": " + stderr.String())
			}
			t.Logf("process %d: %s", i, stderr.String())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
	}
	data, _ := os.ReadFile(counter)
	if n := len(strings.Fields(string(data))); n != 1 {
		t.Fatalf("bootstrap ran %d times, want exactly 1", n)
	}
	if n := strings.Count(outs[0]+outs[1], "bootstrapped"); n != 1 {
		t.Fatalf("%d processes say they bootstrapped, want 1", n)
	}
	m := f.NewManager()
	if cs := f.ConfigState(m, f.Root); cs.State != lvm.StateReady || len(cs.Snapshots) != 1 {
		t.Fatalf("after two inits: %+v", cs)
	}
}

func testErrors(t *testing.T, env Env) {
	f := NewFixture(t, env)
	if _, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "early"); !errors.Is(err, lvm.ErrNotReady) {
		t.Fatalf("workdir before init: %v, want ErrNotReady", err)
	}
	f.Init(0)
	f.Workdir("", "w1")
	if err := f.M.Snapshot(ctx, f.Root, "w1", "other"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"same ext again", second(f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "w1")), lvm.ErrExists},
		{"same ext under another snapshot", second(f.M.CreateWorkdir(ctx, f.Root, "other", "w1")), lvm.ErrExists},
		{"missing snapshot", second(f.M.CreateWorkdir(ctx, f.Root, "nosuch", "w2")), lvm.ErrNotFound},
		{"unknown config", second(f.M.CreateWorkdir(ctx, "nosuch-config", lvm.PostInit, "w2")), lvm.ErrNotFound},
		{"snapshot name taken", f.M.Snapshot(ctx, f.Root, "w1", "other"), lvm.ErrExists},
		{"snapshot of missing workdir", f.M.Snapshot(ctx, f.Root, "nosuch", "s9"), lvm.ErrNotFound},
		{"remove postinit", f.M.RemoveSnapshot(ctx, f.Root, lvm.PostInit), lvm.ErrNotAllowed},
		{"remove missing snapshot", f.M.RemoveSnapshot(ctx, f.Root, "nosuch"), lvm.ErrNotFound},
		{"remove missing workdir", f.M.RemoveWorkdir(ctx, f.Root, "nosuch"), lvm.ErrNotFound},
		{"current to missing snapshot", f.M.SetCurrent(ctx, f.Root, "head", "nosuch"), lvm.ErrNotFound},
	}
	for _, bad := range []string{"a/b", "..", ".hidden", "-x", "with space", "nul\x00", "new\nline", "dot.ted",
		strings.Repeat("x", 200), "\xff\xfe", "", "snap_tmeta"} {
		cases = append(cases,
			struct {
				name string
				err  error
				want error
			}{"bad ext " + bad, second(f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, bad)), lvm.ErrInvalidName},
			struct {
				name string
				err  error
				want error
			}{"bad snapshot " + bad, f.M.Snapshot(ctx, f.Root, "w1", bad), lvm.ErrInvalidName})
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	var ne *lvm.NameError
	if err := second(f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "a/b")); !errors.As(err, &ne) || ne.Reason == "" {
		t.Errorf("bad name error carries no reason: %v", err)
	}
	// A snapshot with workdirs cannot go; a held workdir cannot go; a
	// workdir with a process inside cannot go (and stays intact).
	f.Workdir("other", "w2")
	if err := f.M.RemoveSnapshot(ctx, f.Root, "other"); !errors.Is(err, lvm.ErrNotEmpty) {
		t.Errorf("remove snapshot with workdir: %v, want ErrNotEmpty", err)
	}
	if err := f.M.Hold(f.Root, "w2", "build 7"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.RemoveWorkdir(ctx, f.Root, "w2"); !errors.Is(err, lvm.ErrBusy) || !strings.Contains(err.Error(), "build 7") {
		t.Errorf("remove held workdir: %v, want ErrBusy naming the holder", err)
	}
	f.M.Unhold(f.Root, "w2")
	if !env.Real() {
		return
	}
	root := filepath.Join(f.Basedir, f.Root+"-w2", "root")
	sleeper := exec.Command("sleep", "30")
	sleeper.Dir = root
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	err := f.M.RemoveWorkdir(ctx, f.Root, "w2")
	sleeper.Process.Kill()
	sleeper.Wait()
	if !errors.Is(err, lvm.ErrBusy) {
		t.Errorf("remove workdir in use: %v, want ErrBusy", err)
	}
	if !f.Mounted(root) {
		t.Errorf("a refused remove unmounted the workdir")
	}
	if err := f.M.RemoveWorkdir(ctx, f.Root, "w2"); err != nil {
		t.Errorf("remove after the user left: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

// Over the refuse threshold, new volumes get a PoolFullError naming the
// pool and its figures; check_size = False lowers that to a warning.
func testPoolFull(t *testing.T, env Env) {
	env.PoolSize = 512 << 20
	env.VolumeSize = 1 << 30
	f := NewFixture(t, env)
	f.Init(0)
	w := f.Workdir("", "filler")
	// Fill the pool to just over 90 %: the filler's own data.
	st, _ := f.M.Refresh(ctx)
	p := st.Pool(f.Pool)
	need := int64(float64(p.Stats.SizeBytes)*0.93) - p.Stats.UsedBytes
	if env.Fill != nil {
		env.Fill(t, f.StateDir, f.Pool, 0.93)
	} else if need > 0 {
		dd := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(w, "fill"), "bs=1M",
			"count="+strconv.FormatInt(need>>20, 10), "conv=fsync")
		if out, err := dd.CombinedOutput(); err != nil {
			t.Logf("dd stopped: %v %s", err, out)
		}
		// btrfs counts written data as used only once its transaction
		// commits, which a loaded machine may put off past the fsync.
		if d, err := os.Open(w); err == nil {
			unix.Syncfs(int(d.Fd()))
			d.Close()
		}
	}
	st, err := f.M.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p = st.Pool(f.Pool)
	t.Logf("pool after fill: %.1f%% data, %.1f%% metadata, status %s", p.Stats.DataPercent, p.Stats.MetadataPercent, p.Stats.Status)
	if p.Stats.Status != lvm.StatusFull {
		t.Fatalf("status %q at %.1f%%, want full", p.Stats.Status, p.Stats.DataPercent)
	}
	_, err = f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "more")
	var pf *lvm.PoolFullError
	if !errors.As(err, &pf) || !errors.Is(err, lvm.ErrPoolFull) {
		t.Fatalf("workdir in a full pool: %v, want a PoolFullError", err)
	}
	if pf.Pool != f.Pool || !strings.Contains(err.Error(), f.Pool) || !strings.Contains(err.Error(), "%") {
		t.Fatalf("pool-full error does not name the pool and its figures: %v", err)
	}
	if err := f.M.Snapshot(ctx, f.Root, "filler", "full-snap"); !errors.Is(err, lvm.ErrPoolFull) {
		t.Fatalf("snapshot in a full pool: %v, want ErrPoolFull", err)
	}
	// Other workdirs stay readable.
	if env.Real() {
		if got := Chroot(t, w, "cat /etc/issue"); !strings.Contains(got, "busybox") {
			t.Fatalf("filler unreadable: %q", got)
		}
	}
	// check_size = False: warn, go on.
	lax := f.Config
	lax.CheckSize = false
	if err := f.M.AddConfig(lax); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "lax"); err != nil {
		t.Fatalf("check_size=False still refused: %v", err)
	}
	// Freeing space makes it work again.
	if err := f.M.RemoveWorkdir(ctx, f.Root, "filler"); err != nil {
		t.Fatal(err)
	}
	if env.Fill != nil {
		env.Fill(t, f.StateDir, f.Pool, 0)
	}
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	if _, err = f.M.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "after"); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
}

// A bootstrap that fails publishes nothing, records why, and the next
// init starts over from a clean base.
func testFailedInit(t *testing.T, env Env) {
	f := NewFixture(t, env)
	good := f.Config.Bootstrap
	f.Config.Bootstrap = []string{"/bin/sh", "-c", `touch "$ROOT/half-done"; echo "no network" >&2; exit 7`}
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.Init(ctx, f.Root, TestWriter(t)); err == nil {
		t.Fatal("a failing bootstrap reported success")
	}
	cs := f.ConfigState(f.M, f.Root)
	if cs.State != lvm.StateFailed || !strings.Contains(cs.StateDetail, "exit status 7") {
		t.Fatalf("state %q %q, want failed with the reason", cs.State, cs.StateDetail)
	}
	if len(cs.Snapshots) != 0 || len(cs.Workdirs) != 0 {
		t.Fatalf("a failed init published volumes: %+v", cs)
	}
	assertNoOwnVolumes(t, f, f.M, 0)
	f.Config.Bootstrap = good
	f.Init(0)
	w := f.Workdir("", "w")
	if _, err := os.Stat(filepath.Join(w, "half-done")); err == nil {
		t.Fatal("the retry did not start from a clean base")
	}
	if cs := f.ConfigState(f.M, f.Root); cs.State != lvm.StateReady {
		t.Fatalf("after a good init: %q", cs.State)
	}
}

// assertNoOwnVolumes checks the backend holds exactly want volumes of the
// config (hidden or not) and no mount or loop device of ours leaked.
func assertNoOwnVolumes(t *testing.T, f *Fixture, m *lvm.Manager, want int) {
	t.Helper()
	be := f.Env.Backend(t, f.StateDir)
	r, err := be.Scan(ctx, f.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, v := range r.Volumes {
		if mock.IsOurs(f.Root, v.Name) {
			ours = append(ours, v.Name)
		}
	}
	if len(ours) != want {
		t.Fatalf("backend holds volumes %v, want %d", ours, want)
	}
	if leaked := f.MountsUnder(f.Basedir); len(leaked) > 0 {
		t.Fatalf("leaked mounts %v", leaked)
	}
}

// SIGKILL at every step of init: after a restart nothing is published,
// nothing leaks, and the next init succeeds.
func testKilledInit(t *testing.T, env Env) {
	points := []string{"init:before-base", "init:after-base", "init:before-bootstrap", "init:after-bootstrap", "init:before-postinit", "init:after-postinit"}
	for i, point := range points {
		t.Run(point, func(t *testing.T) {
			RequireCrashPoints(t)
			// Each point has its own pool and config: they run side by
			// side, which also puts recovery under concurrent load.
			t.Parallel()
			f := NewFixtureRoot(t, env, "killed-init-"+strconv.Itoa(i))
			if err := f.M.EnsurePool(ctx, f.Root); err != nil {
				t.Fatal(err)
			}
			out, err := f.helperCmd(Job{Op: "init"}, point).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "crashpoint: "+point) {
				t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
			}
			m := f.NewManager() // recovers
			cs := f.ConfigState(m, f.Root)
			if cs.State == lvm.StateReady || len(cs.Snapshots) != 0 || len(cs.Workdirs) != 0 {
				t.Fatalf("after a kill at %s: %+v", point, cs)
			}
			assertNoOwnVolumes(t, f, m, 0)
			f.M = m
			f.Init(0)
			w := f.Workdir("", "after")
			if env.Real() {
				Chroot(t, w, "true")
			}
		})
	}
	// A kill from outside, in the middle of the bootstrap command, which
	// holds a file open in the new root: none of its processes may outlive
	// the killed process (they would keep the detached root and its
	// device busy).
	t.Run("external-kill-during-bootstrap", func(t *testing.T) {
		requireReal(t, env) // the bootstrap's pid namespace needs root
		t.Parallel()
		f := NewFixtureRoot(t, env, "killed-init-external")
		ready := filepath.Join(t.TempDir(), "started")
		mark := strconv.Itoa(60+os.Getpid()%1000) + ".5"
		cfg := f.Config
		cfg.Bootstrap = []string{"/bin/sh", "-c", `exec 3>"$ROOT/partial"; touch "$READY"; sleep ` + mark + `; true`}
		cfg.BootstrapEnv = []string{"READY=" + ready}
		cmd := f.helperCmd(Job{Op: "init", Configs: []lvm.Config{cfg}}, "")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, 3*time.Minute, "bootstrap to start", func() bool { _, err := os.Stat(ready); return err == nil })
		cs := f.ConfigState(f.NewManager(), f.Root)
		if cs.State != lvm.StateInitializing {
			t.Errorf("while bootstrapping, state is %q, want initializing", cs.State)
		}
		cmd.Process.Kill()
		cmd.Wait()
		WaitFor(t, 5*time.Second, "the killed bootstrap's processes to die", func() bool {
			return len(processesWithArgs("sleep", mark)) == 0
		})
		m := f.NewManager()
		assertNoOwnVolumes(t, f, m, 0)
		f.M = m
		f.Init(0)
	})
}

// SIGKILL at every step of workdir creation.
func testKilledWorkdirCreate(t *testing.T, env Env) {
	RequireCrashPoints(t)
	f := NewFixture(t, env)
	f.Init(0)
	keep := f.Workdir("", "keep")
	if env.Real() {
		Chroot(t, keep, "echo kept > /root/kept")
	}
	for _, point := range []string{"workdir-create:before-clone", "workdir-create:after-clone", "workdir-create:after-mount"} {
		t.Run(point, func(t *testing.T) {
			out, err := f.helperCmd(Job{Op: "workdir-create", Snap: lvm.PostInit, Ext: "victim"}, point).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "crashpoint: "+point) {
				t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
			}
			m := f.NewManager()
			cs := f.ConfigState(m, f.Root)
			if cs.Workdir("victim") != nil {
				t.Fatalf("half-made workdir is listed after a kill at %s", point)
			}
			assertNoOwnVolumesExcept(t, f, []string{mock.SnapshotVolume(f.Root, lvm.PostInit), mock.WorkdirVolume(f.Root, "keep")})
			if !env.Real() {
				// nothing to read in memory
			} else if got := Chroot(t, keep, "cat /root/kept"); got != "kept\n" {
				t.Fatalf("existing workdir damaged: %q", got)
			}
			f.M = m
			w := f.Workdir("", "victim")
			if env.Real() {
				Chroot(t, w, "true")
			}
			if err := m.RemoveWorkdir(ctx, f.Root, "victim"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func assertNoOwnVolumesExcept(t *testing.T, f *Fixture, want []string) {
	t.Helper()
	be := f.Env.Backend(t, f.StateDir)
	r, err := be.Scan(ctx, f.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, v := range r.Volumes {
		if mock.IsOurs(f.Root, v.Name) {
			ours = append(ours, v.Name)
		}
	}
	sort.Strings(ours)
	sort.Strings(want)
	if strings.Join(ours, ",") != strings.Join(want, ",") {
		t.Fatalf("backend holds %v, want %v", ours, want)
	}
	for _, mp := range f.MountsUnder(f.Basedir) {
		if !strings.HasSuffix(mp, "-keep/root") {
			t.Fatalf("leaked mount %s", mp)
		}
	}
}

// Scrub removes one config's volumes and records; the pool stays while
// another config uses it and goes with the last one.
func testScrub(t *testing.T, env Env) {
	f := NewFixture(t, env)
	other := f.ConfigFor("other-root")
	f.M = f.NewManager(other)
	f.Init(0)
	if _, err := f.M.Init(ctx, "other-root", TestWriter(t)); err != nil {
		t.Fatal(err)
	}
	w := f.Workdir("", "x")
	if err := f.M.Snapshot(ctx, f.Root, "x", "sx"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.Scrub(ctx, f.Root); err != nil {
		t.Fatal(err)
	}
	if f.Mounted(w) {
		t.Fatal("scrub left the workdir mounted")
	}
	st, _ := f.M.Refresh(ctx)
	p := st.Pool(f.Pool)
	if p == nil {
		t.Fatal("scrub removed a pool another config still uses")
	}
	_, cs := st.Config(f.Root)
	if cs == nil || len(cs.Snapshots)+len(cs.Workdirs) != 0 || cs.State != lvm.StateUninitialized {
		t.Fatalf("after scrub: %+v", cs)
	}
	if _, oc := st.Config("other-root"); oc == nil || oc.State != lvm.StateReady {
		t.Fatalf("scrub touched another config: %+v", oc)
	}
	if m, _ := filepath.Glob(filepath.Join(f.Basedir, ".snapinfo-mock."+f.Root+".*")); len(m) != 0 {
		t.Fatalf("scrub left records %v", m)
	}
	if err := f.M.Scrub(ctx, "other-root"); err != nil {
		t.Fatal(err)
	}
	st, _ = f.M.Refresh(ctx)
	if p := st.Pool(f.Pool); p != nil && p.Stats.SizeBytes != 0 {
		t.Fatalf("the last scrub left the pool: %+v", p.Stats)
	}
}

// Current snapshots use mock's records, byte for byte.
func testCurrent(t *testing.T, env Env) {
	f := NewFixture(t, env)
	f.Init(0)
	rec := filepath.Join(f.Basedir, ".snapinfo-mock."+f.Root+".head")
	if b, _ := os.ReadFile(rec); string(b) != "mock."+f.Root+".postinit" {
		t.Fatalf("record after init %q, want mock's format", b)
	}
	f.Workdir("", "head")
	if err := f.M.Snapshot(ctx, f.Root, "head", "s2"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(rec); string(b) != "mock."+f.Root+".s2" {
		t.Fatalf("record after snapshot %q, want the new snapshot", b)
	}
	// mock's rollback-to: current becomes the snapshot and the head goes.
	if err := f.M.RollbackTo(ctx, f.Root, lvm.PostInit); err != nil {
		t.Fatal(err)
	}
	if cur, _ := f.M.Current(f.Root, "head"); cur != lvm.PostInit {
		t.Fatalf("current after rollback %q", cur)
	}
	if cs := f.ConfigState(f.M, f.Root); cs.Workdir("head") != nil {
		t.Fatal("rollback-to kept the head workdir")
	}
	// A record mock wrote with a trailing newline, or naming a snapshot
	// that is gone, is read as mock reads it.
	os.WriteFile(rec, []byte("mock."+f.Root+".s2\n"), 0o644)
	if cur, _ := f.M.Current(f.Root, "head"); cur != "s2" {
		t.Fatalf("record with newline read as %q", cur)
	}
	if err := f.M.RemoveSnapshot(ctx, f.Root, "s2"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := f.M.Current(f.Root, "head"); cur != lvm.PostInit {
		t.Fatalf("current after its snapshot was removed %q, want postinit", cur)
	}
	// The head workdir lives at mock's path without a unique-ext.
	w := f.Workdir("", "head")
	if want := filepath.Join(f.Basedir, f.Root, "root"); w != want {
		t.Fatalf("head mounted at %s, want %s", w, want)
	}
}

// A Manager that has no config file for a root it finds in a pool still
// lists it and can make and remove its workdirs, with mock's defaults and
// the filesystem read off the volume.
func testDiscovered(t *testing.T, env Env) {
	f := NewFixture(t, env)
	f.Init(0)
	m, err := lvm.NewManager(f.Env.ManagerOptions(f.StateDir, f.Basedir, f.Log))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, cs := m.State().Config(f.Root)
	if cs == nil || cs.Known || cs.State != lvm.StateReady {
		t.Fatalf("discovered config: %+v", cs)
	}
	w, err := m.CreateWorkdir(ctx, f.Root, "", "found")
	if err != nil {
		t.Fatal(err)
	}
	if env.Real() {
		Chroot(t, w.Mountpoint, "true")
	}
	if err := m.RemoveWorkdir(ctx, f.Root, "found"); err != nil {
		t.Fatal(err)
	}
}

// An operation killed after it changed mock's current-snapshot record
// leaves the record as the whole operation would: a rolled-back snapshot
// or workdir creation puts the old record back, a removal of the current
// snapshot that is finished moves the record to postinit, never the one
// without the other.
func testKilledRecords(t *testing.T, env Env) {
	RequireCrashPoints(t)
	f := NewFixture(t, env)
	f.Init(0)
	f.Workdir("", "w")
	if err := f.M.Snapshot(ctx, f.Root, "w", "mid"); err != nil {
		t.Fatal(err)
	}
	current := func(ext string) string {
		t.Helper()
		cur, err := f.NewManager().Current(f.Root, ext)
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	crash := func(job Job, point string) {
		t.Helper()
		out, err := f.helperCmd(job, point).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "crashpoint: "+point) {
			t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
		}
	}

	crash(Job{Op: "snapshot", Ext: "w", Name: "new"}, "snapshot:after-record")
	if cur := current("w"); cur != "mid" {
		t.Errorf("after a snapshot killed and rolled back, w's current snapshot is %q, want mid", cur)
	}
	crash(Job{Op: "workdir-create", Snap: "mid", Ext: "v"}, "workdir-create:after-record")
	if cur := current("v"); cur != lvm.PostInit {
		t.Errorf("after a workdir creation killed and rolled back, v's current snapshot is %q, want postinit", cur)
	}
	f.M = f.NewManager()
	if err := f.M.RemoveWorkdir(ctx, f.Root, "w"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.SetCurrent(ctx, f.Root, lvm.DefaultExt, "mid"); err != nil {
		t.Fatal(err)
	}
	crash(Job{Op: "remove-snapshot", Snap: "mid"}, "snapshot-remove:after-records")
	m := f.NewManager()
	if cs := f.ConfigState(m, f.Root); cs.Snapshot("mid") != nil {
		t.Errorf("a snapshot removal killed half way was not finished: %+v", cs.Snapshots)
	}
	if cur := current(lvm.DefaultExt); cur != lvm.PostInit {
		t.Errorf("after the current snapshot's removal was finished, head's current is %q, want postinit", cur)
	}
	f.M = m
}

// processesWithArgs lists the pids whose command line is exactly args.
func processesWithArgs(args ...string) []int {
	want := strings.Join(args, "\x00") + "\x00"
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A Manager that keeps running (a daemon) while another process is killed
// half way through an operation: at its next refresh it shows nothing of
// the half-made workdir, finishes the dead operation (no intent, mount or
// volume left), and can make that workdir itself.
func testKilledUnderRunning(t *testing.T, env Env) {
	RequireCrashPoints(t)
	f := NewFixture(t, env)
	f.Init(0)
	for _, point := range []string{"workdir-create:after-clone", "workdir-create:after-mount"} {
		out, err := f.helperCmd(Job{Op: "workdir-create", Snap: lvm.PostInit, Ext: "victim"}, point).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "crashpoint: "+point) {
			t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
		}
		st, err := f.M.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, cs := st.Config(f.Root); cs.Workdir("victim") != nil {
			t.Fatalf("after a kill at %s the running manager lists the half-made workdir: %+v", point, cs.Workdir("victim"))
		}
		if ents, _ := os.ReadDir(filepath.Join(f.StateDir, "intents")); len(ents) != 0 {
			t.Fatalf("after a kill at %s and a refresh the dead operation is not finished: %d intents left", point, len(ents))
		}
		assertNoOwnVolumes(t, f, f.M, 1)
		w := f.Workdir("", "victim")
		if env.Real() {
			Chroot(t, w, "true")
		}
		if err := f.M.RemoveWorkdir(ctx, f.Root, "victim"); err != nil {
			t.Fatal(err)
		}
	}
}

// Scrub of a pool's last config killed after its volumes and records are
// gone: recovery finishes it, pool included, as the scrub would have.
func testKilledScrubLast(t *testing.T, env Env) {
	RequireCrashPoints(t)
	f := NewFixture(t, env)
	f.Init(0)
	f.Workdir("", "w")
	point := "scrub:after-records"
	out, err := f.helperCmd(Job{Op: "scrub"}, point).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "crashpoint: "+point) {
		t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
	}
	m := f.NewManager()
	if p := m.State().Pool(f.Pool); p != nil && p.Stats.SizeBytes != 0 {
		t.Fatalf("after a scrub of the last config was killed and recovered, the pool is still there: %+v", p.Stats)
	}
	pools, err := f.Env.Backend(t, f.StateDir).Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if p == f.Pool {
			t.Fatalf("the backend still has pool %s", p)
		}
	}
	f.M = m
}

// Two Managers on one state directory (two daemons, or a daemon and the
// CLI) act on one config; each decides on what is on disk when it holds
// the config's lock, never on a view the other one has outdated since.
func testTwoManagers(t *testing.T, env Env) {
	f := NewFixture(t, env)
	f.Init(0)
	f.Workdir("", "w")
	if err := f.M.Snapshot(ctx, f.Root, "w", "s1"); err != nil {
		t.Fatal(err)
	}
	a, b := f.NewManager(), f.NewManager()
	if err := a.RemoveWorkdir(ctx, f.Root, "w"); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveWorkdir(ctx, f.Root, "w"); !errors.Is(err, lvm.ErrNotFound) {
		t.Errorf("the second removal of one workdir: %v, want ErrNotFound", err)
	}
	if _, err := a.CreateWorkdir(ctx, f.Root, "s1", "from-s1"); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveSnapshot(ctx, f.Root, "s1"); !errors.Is(err, lvm.ErrNotEmpty) {
		t.Errorf("removing a snapshot another process just cloned: %v, want ErrNotEmpty", err)
	}
	if err := a.RemoveWorkdir(ctx, f.Root, "from-s1"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveSnapshot(ctx, f.Root, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetCurrent(ctx, f.Root, lvm.DefaultExt, "s1"); !errors.Is(err, lvm.ErrNotFound) {
		t.Errorf("making a snapshot another process removed current: %v, want ErrNotFound", err)
	}
	if _, err := a.CreateWorkdir(ctx, f.Root, "", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateWorkdir(ctx, f.Root, "", "x"); !errors.Is(err, lvm.ErrExists) {
		t.Errorf("creating a workdir another process just made: %v, want ErrExists", err)
	}
	f.M = a
}

// A process that makes itself a mount namespace while a config is being
// bootstrapped (every build's sandbox does, and so do unshare and
// systemd) holds a copy of the base's mount; unmounting ours then does
// not write the filesystem out. postinit must hold the bootstrapped root
// all the same.
func testInitBesideNamespace(t *testing.T, env Env) {
	requireReal(t, env)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is missing: %v", err)
	}
	f := NewFixture(t, env)
	dir := t.TempDir()
	ready, goOn := filepath.Join(dir, "ready"), filepath.Join(dir, "go")
	f.Config.Bootstrap = []string{"/bin/sh", "-c", `/bin/sh "$SCRIPT" && touch "$READY" && while [ ! -e "$GO" ]; do sleep 0.05; done`}
	f.Config.BootstrapEnv = []string{"SCRIPT=" + BootstrapScript(t), "READY=" + ready, "GO=" + goOn}
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := f.M.Init(ctx, f.Root, TestWriter(t)); done <- err }()
	WaitFor(t, 60*time.Second, "the bootstrap", func() bool { _, err := os.Stat(ready); return err == nil })
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "120")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	// unshare has copied the mounts once its sleep runs.
	WaitFor(t, 10*time.Second, "the other namespace", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(holder.Process.Pid) + "/cmdline")
		return strings.HasPrefix(string(b), "sleep")
	})
	if err := os.WriteFile(goOn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w := f.Workdir("", "check")
	if got := Chroot(t, w, "cat /etc/issue"); !strings.Contains(got, "thinroot busybox buildroot") {
		t.Fatalf("a workdir of postinit reads %q", got)
	}
}

// requireReal skips a test of what only real volumes have: data, space,
// mounts that something can keep busy, namespaces.
func requireReal(t *testing.T, env Env) {
	t.Helper()
	if !env.Real() {
		t.Skipf("the %s backend's volumes hold no data and nothing is mounted", env.Name)
	}
}

// A process killed inside a backend or mount call, half way through an
// operation: the next Manager finishes the operation the way its type
// says and the config works on. The memory backend can be told to die
// there (memory.KillEnv), so this runs without crash points compiled in.
func testKilledInBackend(t *testing.T, env Env) {
	if env.Name != memory.Kind {
		t.Skip("only the memory backend dies inside its calls on request; real backends run the crash points")
	}
	f := NewFixture(t, env)
	f.Init(0)
	kill := func(job Job, at string) {
		t.Helper()
		cmd := f.helperCmd(job, "")
		cmd.Env = append(cmd.Env, memory.KillEnv+"="+at)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "memory backend: killed") {
			t.Fatalf("%s was not killed at %s: %v\n%s", job.Op, at, err, out)
		}
		f.M = f.NewManager()
	}
	for _, at := range []string{"after-snapshot", "after-mount"} {
		kill(Job{Op: "workdir-create", Snap: lvm.PostInit, Ext: "victim"}, at)
		if cs := f.ConfigState(f.M, f.Root); cs.Workdir("victim") != nil {
			t.Fatalf("a workdir creation killed %s is listed after recovery", at)
		}
		assertNoOwnVolumes(t, f, f.M, 1)
		f.Workdir("", "victim")
		if err := f.M.RemoveWorkdir(ctx, f.Root, "victim"); err != nil {
			t.Fatal(err)
		}
	}
	f.Workdir("", "w")
	kill(Job{Op: "workdir-remove", Ext: "w"}, "before-remove")
	if cs := f.ConfigState(f.M, f.Root); cs.Workdir("w") != nil {
		t.Fatal("a workdir removal killed before its volume went was not finished")
	}
	assertNoOwnVolumes(t, f, f.M, 1)
	kill(Job{Op: "scrub"}, "after-remove")
	if cs := f.ConfigState(f.M, f.Root); cs != nil && (len(cs.Snapshots) != 0 || cs.State != lvm.StateUninitialized) {
		t.Fatalf("a scrub killed after its first removal was not finished: %+v", cs)
	}
	if p := f.M.State().Pool(f.Pool); p != nil && p.Stats.SizeBytes != 0 {
		t.Fatalf("the scrub of the pool's last config, finished, left the pool: %+v", p.Stats)
	}
	f.Init(0)
}
