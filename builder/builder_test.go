package builder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/cgroup"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/procs"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/metrics"
	"github.com/thinroot/thinroot/rpmroot"
	"github.com/thinroot/thinroot/sandbox"
)

var env = lvmtest.HostEnv()

func TestMain(m *testing.M) {
	sandbox.Main()
	rpmroot.BootstrapMain()
	daemonHelper()
	os.Exit(testguard.Main(m))
}

// world is a builder over a fresh fixture (pool, basedir, state dir).
type world struct {
	f       *lvmtest.Fixture
	b       *builder.Builder
	cancel  context.CancelFunc
	info    builder.ConfigInfo
	src     string
	cg      *cgroup.Manager
	limits  builder.Limits
	metrics *metrics.Metrics
}

const artifactScript = `set -e; echo "building $THINROOT_BUILD_ID as $(id -u)"; tr a-z A-Z < "$SOURCE/input" > "$RESULTS/artifact.txt"; echo done`

func newWorld(t *testing.T, jobs int) *world {
	t.Helper()
	f := lvmtest.NewFixture(t, env)
	w := &world{f: f, info: builder.ConfigInfo{Root: f.Root, Build: []string{"/bin/sh", "-c", artifactScript}}}
	w.src = t.TempDir()
	os.WriteFile(filepath.Join(w.src, "input"), []byte("hello thinroot\n"), 0o644)
	w.start(t, jobs)
	return w
}

func (w *world) start(t *testing.T, jobs int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if w.cg == nil {
		w.cg = testCgroups(t)
	}
	b, err := builder.New(ctx, builder.Options{
		StateDir: w.f.StateDir, Jobs: jobs, Manager: w.f.M, Log: w.f.Log,
		Cgroups: w.cg, Limits: w.limits, Metrics: w.metrics,
		Resolve: func(root string) (builder.ConfigInfo, error) {
			if root != w.info.Root {
				return builder.ConfigInfo{}, fmt.Errorf("unknown config %s", root)
			}
			return w.info, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Start(ctx)
	w.b, w.cancel = b, cancel
	t.Cleanup(func() { cancel(); b.Wait() })
}

func (w *world) submit(t *testing.T, req builder.Request) builder.Build {
	t.Helper()
	if req.Config == "" {
		req.Config = w.f.Root
	}
	b, err := w.b.Submit(req, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) wait(t *testing.T, id string) builder.Build {
	t.Helper()
	// A build's time depends on the machine (a bootstrap downloads): wait
	// as long as the test may run.
	b, err := w.b.WaitFor(testguard.Context(t), id)
	if err != nil {
		t.Fatalf("wait for %s: %v (state %s)", id, err, b.State)
	}
	return b
}

// waitStarted waits until a build's command printed "started"; a build
// that ends first fails the test with its log.
func (w *world) waitStarted(t *testing.T, id string) {
	t.Helper()
	lvmtest.WaitFor(t, 60*time.Second, "the build to start", func() bool {
		if strings.Contains(readLog(t, w, id), "started") {
			return true
		}
		if b, _ := w.b.Get(id); builder.Final(b.State) {
			t.Fatalf("build %s ended (%s: %s) before it started:\n%s", id, b.State, b.Error, readLog(t, w, id))
		}
		return false
	})
}

func readLog(t *testing.T, w *world, id string) string {
	t.Helper()
	data, err := os.ReadFile(w.b.LogPath(id))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Eight builds at once on a config with no postinit: one bootstrap (the
// records say which build did it), eight artifacts, no workdir left.
func TestEightParallelBuildsBootstrapOnce(t *testing.T) {
	w := newWorld(t, 8)
	counter := filepath.Join(t.TempDir(), "bootstraps")
	w.f.Config.Bootstrap = []string{"/bin/sh", "-c", `echo x >> "$COUNTER"; exec /bin/sh "$SCRIPT"`}
	w.f.Config.BootstrapEnv = []string{"COUNTER=" + counter, "SCRIPT=" + lvmtest.BootstrapScript(t)}
	if err := w.f.M.AddConfig(w.f.Config); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 8 {
		ids = append(ids, w.submit(t, builder.Request{Source: w.src}).ID)
	}
	boots := 0
	for _, id := range ids {
		b := w.wait(t, id)
		if b.State != builder.StateSucceeded {
			t.Fatalf("build %s: %s %s\n%s", id, b.State, b.Error, readLog(t, w, id))
		}
		if b.Bootstrapped {
			boots++
		}
		art, err := os.ReadFile(filepath.Join(b.ResultDir, "artifact.txt"))
		if err != nil || string(art) != "HELLO THINROOT\n" {
			t.Fatalf("build %s artifact %q, %v", id, art, err)
		}
		if bl, _ := os.ReadFile(filepath.Join(b.ResultDir, "build.log")); !strings.Contains(string(bl), "done") {
			t.Fatalf("build %s: build.log in the result directory is incomplete: %q", id, bl)
		}
	}
	if boots != 1 {
		t.Fatalf("%d builds say they bootstrapped, want exactly 1", boots)
	}
	if data, _ := os.ReadFile(counter); strings.Count(string(data), "x") != 1 {
		t.Fatalf("bootstrap ran %d times", strings.Count(string(data), "x"))
	}
	if w.cg != nil && len(w.cg.Groups()) != 0 {
		t.Fatalf("cgroups left after the builds: %v", w.cg.Groups())
	}
	st, _ := w.f.M.Refresh(context.Background())
	if _, cs := st.Config(w.f.Root); len(cs.Workdirs) != 0 {
		t.Fatalf("workdirs left after the builds: %+v", cs.Workdirs)
	}
}

// The build runs as the unprivileged user in its own pid namespace, with
// no network unless asked.
func TestIsolation(t *testing.T) {
	w := newWorld(t, 2)
	w.f.Init(0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { fmt.Fprint(rw, "REACHED") }))
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	script := `id -u; ls /proc | grep -c '^[0-9][0-9]*$'; printf 'GET / HTTP/1.0\r\n\r\n' | nc ` + host + ` ` + port + ` || echo NO-NETWORK; ls /var/lib 2>&1 | head -3`
	off := w.wait(t, w.submit(t, builder.Request{Command: []string{"/bin/sh", "-c", script}}).ID)
	on := w.wait(t, w.submit(t, builder.Request{Network: true, Command: []string{"/bin/sh", "-c", script}}).ID)
	logOff, logOn := readLog(t, w, off.ID), readLog(t, w, on.ID)
	if off.BuildUID != 1000 || !strings.Contains(logOff, "\n1000\n") {
		t.Fatalf("build did not run as uid 1000 (record %d):\n%s", off.BuildUID, logOff)
	}
	if strings.Contains(logOff, "REACHED") || !strings.Contains(logOff, "NO-NETWORK") {
		t.Fatalf("a build without --network reached the host:\n%s", logOff)
	}
	if !strings.Contains(logOn, "REACHED") {
		t.Fatalf("a build with --network could not reach the host:\n%s", logOn)
	}
	lines := strings.Split(logOff, "\n")
	for i, l := range lines {
		if l == "1000" && i+1 < len(lines) {
			if n, _ := strconv.Atoi(lines[i+1]); n == 0 || n > 6 {
				t.Fatalf("the build sees %s processes: not its own pid namespace", lines[i+1])
			}
		}
	}
}

// A failing build's status and complete log come back, through the
// builder and through the API.
func TestFailingBuildThroughAPI(t *testing.T) {
	w := newWorld(t, 2)
	w.f.Init(0)
	sock := filepath.Join(t.TempDir(), "api.sock")
	srv := &builder.Server{B: w.b, GID: 0, Log: w.f.Log}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, sock)
	lvmtest.WaitFor(t, 5*time.Second, "the socket", func() bool { _, err := os.Stat(sock); return err == nil })
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode %v, want 0666", fi.Mode().Perm())
	}
	c := builder.NewClient(sock)
	b, err := c.Submit(ctx, builder.Request{Config: w.f.Root, Command: []string{"/bin/sh", "-c", "for i in 1 2 3; do echo line $i; done; echo to-stderr >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	var logText strings.Builder
	final, err := c.Events(ctx, b.ID, func(ev builder.Event) {
		switch ev.Type {
		case "state":
			states = append(states, ev.State)
		case "log":
			logText.WriteString(ev.Data)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if final.State != builder.StateFailed || final.ExitCode == nil || *final.ExitCode != 3 {
		t.Fatalf("final %+v, want failed with exit 3", final)
	}
	for _, want := range []string{"line 1", "line 3", "to-stderr", "exit status 3"} {
		if !strings.Contains(logText.String(), want) {
			t.Fatalf("streamed log lacks %q:\n%s", want, logText.String())
		}
	}
	if strings.Join(states, ",") != "queued,creating-workdir,building,collecting,failed" {
		t.Fatalf("states %v", states)
	}
	// Bad requests are refused with a reason, unknown builds are 404.
	for _, req := range []builder.Request{{Config: "nope"}, {Config: w.f.Root, UniqueExt: "a/b", Command: []string{"true"}}, {Config: w.f.Root, Source: "relative", Command: []string{"true"}}} {
		var he *builder.HTTPError
		if _, err := c.Submit(ctx, req); !errors.As(err, &he) || he.Code != 400 {
			t.Errorf("request %+v: %v, want 400", req, err)
		}
	}
	var he *builder.HTTPError
	if _, err := c.Get(ctx, "nosuch"); !errors.As(err, &he) || he.Code != 404 {
		t.Errorf("unknown build: %v", err)
	}
	resp := rawPost(t, sock, "/v1/builds", `{"config": "x", "bogus": 1}`)
	if resp != 400 {
		t.Errorf("unknown field: %d", resp)
	}
	// A negative timeout is refused, not run without a limit.
	if resp := rawPost(t, sock, "/v1/builds", `{"config": "`+w.f.Root+`", "command": ["true"], "timeout": "-5s"}`); resp != 400 {
		t.Errorf("negative timeout: %d, want 400", resp)
	}
	// A snapshot the config lacks is refused when submitted, saying which
	// it has, rather than queued to fail.
	_, err = c.Submit(ctx, builder.Request{Config: w.f.Root, Snapshot: "nosnap", Command: []string{"true"}})
	if !errors.As(err, &he) || he.Code != 400 || he.Kind != builder.KindUnknownSnapshot || !strings.Contains(he.Msg, "postinit") {
		t.Errorf("unknown snapshot: %v (%+v), want 400 unknown-snapshot naming postinit", err, he)
	}
	// Waiting answers the final record.
	if fin, err := c.Wait(ctx, b.ID); err != nil || fin.State != builder.StateFailed || *fin.ExitCode != 3 {
		t.Errorf("wait: %+v %v", fin, err)
	}
	var logBuf strings.Builder
	if _, err := c.Log(ctx, b.ID, 0, true, &logBuf); err != nil || !strings.Contains(logBuf.String(), "line 3") {
		t.Errorf("log: %q %v", logBuf.String(), err)
	}
	bs, err := c.List(ctx)
	if err != nil || len(bs) != 1 {
		t.Fatalf("list: %v %v", bs, err)
	}
}

func rawPost(t *testing.T, sock, path, body string) int {
	t.Helper()
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", sock)
	}}}
	resp, err := hc.Post("http://x"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Cancel and timeout kill every process of the build and leave no mount.
func TestCancelAndTimeout(t *testing.T) {
	w := newWorld(t, 2)
	w.f.Init(0)
	long := []string{"/bin/sh", "-c", "sleep 1000 & sleep 1001 & echo started; wait"}
	b := w.submit(t, builder.Request{Command: long})
	w.waitStarted(t, b.ID)
	rec, _ := w.b.Get(b.ID)
	root := rec.Workdir
	if err := w.b.Cancel(b.ID, 0); err != nil {
		t.Fatal(err)
	}
	fin := w.wait(t, b.ID)
	if fin.State != builder.StateCancelled {
		t.Fatalf("state %s, want cancelled", fin.State)
	}
	assertGone(t, w, b.ID, root)
	if err := w.b.Cancel(b.ID, 0); !errors.Is(err, builder.ErrFinished) {
		t.Fatalf("cancel of a finished build: %v", err)
	}

	tb := w.submit(t, builder.Request{Command: long, Timeout: builder.Duration(2 * time.Second)})
	fin = w.wait(t, tb.ID)
	if fin.State != builder.StateTimedOut {
		t.Fatalf("state %s (%s), want timed-out", fin.State, fin.Error)
	}
	// One status for a timeout, mock's 11, in the record as in the CLI;
	// never the killed command's own 137.
	if fin.ExitCode == nil || *fin.ExitCode != builder.ExitTimedOut || builder.ExitTimedOut != 11 {
		t.Fatalf("a timed-out build records exit code %v, want 11", fin.ExitCode)
	}
	if st := builder.StatusText(fin); !strings.Contains(st, "exit_code: 11\n") {
		t.Fatalf("status of a timed-out build:\n%s", st)
	}
	assertGone(t, w, tb.ID, fin.Workdir)
}

func assertGone(t *testing.T, w *world, id, root string) {
	t.Helper()
	lvmtest.WaitFor(t, 10*time.Second, "the build's processes to die", func() bool {
		return len(procs.Marked("THINROOT_BUILD_ID="+id)) == 0
	})
	if w.cg != nil {
		for _, g := range w.cg.Groups() {
			if g == "build-"+id {
				t.Fatalf("the cgroup of build %s is left behind", id)
			}
		}
	}
	table, _ := mount.Table()
	for _, e := range table {
		if strings.HasPrefix(e.Mountpoint, root) {
			t.Fatalf("mount left behind: %s", e.Mountpoint)
		}
	}
	for _, g := range w.cg.Groups() {
		if g == "build-"+id {
			t.Fatalf("the cgroup of build %s is left behind", id)
		}
	}
	st, _ := w.f.M.Refresh(context.Background())
	if _, cs := st.Config(w.f.Root); len(cs.Workdirs) != 0 {
		t.Fatalf("workdir left behind: %+v", cs.Workdirs)
	}
}

// Keep leaves the workdir, held no longer, for the user.
func TestKeep(t *testing.T) {
	w := newWorld(t, 1)
	w.f.Init(0)
	b := w.wait(t, w.submit(t, builder.Request{Keep: true, UniqueExt: "kept", Command: []string{"/bin/sh", "-c", "echo made > /builddir/mark"}}).ID)
	if b.State != builder.StateSucceeded {
		t.Fatal(b.State, b.Error)
	}
	if got := lvmtest.Chroot(t, b.Workdir, "cat /builddir/mark"); got != "made\n" {
		t.Fatalf("kept workdir: %q", got)
	}
	if err := w.f.M.RemoveWorkdir(context.Background(), w.f.Root, "kept"); err != nil {
		t.Fatalf("a kept workdir is still held: %v", err)
	}
}

// A workdir in use by a build cannot be removed (the tree's rmdir EBUSY).
func TestWorkdirHeldDuringBuild(t *testing.T) {
	w := newWorld(t, 1)
	w.f.Init(0)
	b := w.submit(t, builder.Request{UniqueExt: "busy", Command: []string{"/bin/sh", "-c", "echo started; sleep 5"}})
	w.waitStarted(t, b.ID)
	err := w.f.M.RemoveWorkdir(context.Background(), w.f.Root, "busy")
	if !errors.Is(err, lvm.ErrBusy) || !strings.Contains(err.Error(), b.ID) {
		t.Fatalf("remove during build: %v, want ErrBusy naming the build", err)
	}
	w.b.Cancel(b.ID, 0)
	w.wait(t, b.ID)
}

// The daemon killed with SIGKILL in the middle of a build: at the next
// start the build shows interrupted, its workdir is gone, the pool is
// consistent and other workdirs are untouched.
func TestDaemonKilledMidBuild(t *testing.T) {
	f := lvmtest.NewFixture(t, env)
	f.Init(0)
	other := f.Workdir("", "bystander")
	lvmtest.Chroot(t, other, "echo still > /root/here")
	spec, _ := json.Marshal(daemonJob{StateDir: f.StateDir, Basedir: f.Basedir, Config: f.Config})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), daemonEnv+"="+string(spec))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = lvmtest.TestWriter(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	if _, err := fmt.Fscanln(out, &id); err != nil {
		t.Fatalf("daemon did not report its build: %v", err)
	}
	logPath := filepath.Join(f.StateDir, "builds", id, "log")
	lvmtest.WaitFor(t, 60*time.Second, "the build to run", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "started")
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	w := &world{f: f, info: builder.ConfigInfo{Root: f.Root, Build: []string{"true"}}}
	w.f.M = f.NewManager()
	w.start(t, 1)
	b, err := w.b.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if b.State != builder.StateInterrupted {
		t.Fatalf("after the restart the build is %s, want interrupted", b.State)
	}
	st, _ := w.f.M.Refresh(context.Background())
	_, cs := st.Config(f.Root)
	if cs.Workdir(b.UniqueExt) != nil || cs.Workdir("bystander") == nil || len(cs.Workdirs) != 1 {
		t.Fatalf("after the restart: %+v", cs.Workdirs)
	}
	if got := lvmtest.Chroot(t, other, "cat /root/here"); got != "still\n" {
		t.Fatalf("bystander workdir damaged: %q", got)
	}
	lvmtest.WaitFor(t, 10*time.Second, "the killed build's processes to die", func() bool {
		return len(procs.Marked("THINROOT_BUILD_ID="+id)) == 0
	})
}

const daemonEnv = "THINROOT_BUILDER_TEST_DAEMON"

type daemonJob struct {
	StateDir, Basedir string
	Config            lvm.Config
}

// daemonHelper is the daemon process TestDaemonKilledMidBuild kills: it
// submits one long build, prints its id and runs until killed.
func daemonHelper() {
	spec := os.Getenv(daemonEnv)
	if spec == "" {
		return
	}
	var job daemonJob
	json.Unmarshal([]byte(spec), &job)
	m, err := lvm.NewManager(env.ManagerOptions(job.StateDir, job.Basedir, nil))
	if err == nil {
		err = m.AddConfig(job.Config)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	m.Refresh(ctx)
	b, err := builder.New(ctx, builder.Options{StateDir: job.StateDir, Jobs: 1, Manager: m,
		Resolve: func(string) (builder.ConfigInfo, error) { return builder.ConfigInfo{Root: job.Config.Root}, nil }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	b.Start(ctx)
	rec, err := b.Submit(builder.Request{Config: job.Config.Root, Command: []string{"/bin/sh", "-c", "echo started; sleep 600"}}, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println(rec.ID)
	var wg sync.WaitGroup
	wg.Add(1)
	wg.Wait()
}

// A second daemon starting on the same state directory while the first
// runs a build leaves that build alone: it is not marked interrupted and
// its workdir stays. Builds whose daemon is gone are still closed.
func TestSecondDaemonLeavesRunningBuilds(t *testing.T) {
	w := newWorld(t, 1)
	w.f.Init(0)
	b := w.submit(t, builder.Request{Command: []string{"/bin/sh", "-c", "echo started; sleep 3"}})
	w.waitStarted(t, b.ID)
	rec, _ := w.b.Get(b.ID)
	other, err := builder.New(context.Background(), builder.Options{StateDir: w.f.StateDir, Jobs: 1, Manager: w.f.NewManager(),
		Log: w.f.Log, Resolve: func(string) (builder.ConfigInfo, error) { return w.info, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Get(b.ID); got.State == builder.StateInterrupted {
		t.Fatal("a second daemon marked the first one's running build interrupted")
	}
	if _, err := os.Stat(filepath.Join(rec.Workdir, "etc", "issue")); err != nil {
		t.Fatalf("a second daemon removed a running build's workdir: %v", err)
	}
	if fin := w.wait(t, b.ID); fin.State != builder.StateSucceeded {
		t.Fatalf("the build ended %s: %s", fin.State, fin.Error)
	}
}

// The daemon killed between making a build's workdir and recording it in
// the build's record: at the next start the build is interrupted and
// that workdir, which only the build knew of, is removed; the next build
// of the same unique-ext works.
func TestDaemonKilledAfterWorkdirMade(t *testing.T) {
	lvmtest.RequireCrashPoints(t)
	f := lvmtest.NewFixture(t, env)
	f.Init(0)
	spec, _ := json.Marshal(daemonJob{StateDir: f.StateDir, Basedir: f.Basedir, Config: f.Config})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), daemonEnv+"="+string(spec), "THINROOT_CRASHPOINT=build:workdir-made")
	out, err := cmd.Output()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the daemon was not killed: %v", err)
	}
	id := strings.TrimSpace(string(out))
	w := &world{f: f, info: builder.ConfigInfo{Root: f.Root, Build: []string{"true"}}}
	w.f.M = f.NewManager()
	w.start(t, 1)
	b, err := w.b.Get(id)
	if err != nil || b.State != builder.StateInterrupted {
		t.Fatalf("after the restart the build is %s (%v), want interrupted", b.State, err)
	}
	st, _ := w.f.M.Refresh(context.Background())
	if _, cs := st.Config(f.Root); cs.Workdir(b.UniqueExt) != nil {
		t.Fatalf("the killed build's workdir %s is left behind", b.UniqueExt)
	}
	again := w.wait(t, w.submit(t, builder.Request{UniqueExt: b.UniqueExt, Command: []string{"true"}}).ID)
	if again.State != builder.StateSucceeded {
		t.Fatalf("the next build of %s: %s %s", b.UniqueExt, again.State, again.Error)
	}
}

// Whoever is told that a build changed state finds that state in the
// build's record on disk: a daemon started right after would see the
// same. Before, the state was published first and written after, and a
// second daemon's test read "collecting" for a build the API called
// succeeded.
func TestRecordWrittenBeforeStateIsShown(t *testing.T) {
	w := newWorld(t, 2)
	w.f.Init(0)
	for i := 0; i < 8; i++ {
		b := w.submit(t, builder.Request{Command: []string{"/bin/true"}})
		for {
			ch := w.b.Changed()
			got, err := w.b.Get(b.ID)
			if err != nil {
				t.Fatal(err)
			}
			var disk builder.Build
			data, err := os.ReadFile(filepath.Join(w.f.StateDir, "builds", b.ID, "build.json"))
			if err != nil || json.Unmarshal(data, &disk) != nil {
				t.Fatalf("build %s: record unreadable: %v", b.ID, err)
			}
			if len(disk.Phases) < len(got.Phases) {
				t.Fatalf("build %s: the API says %s (%d phases), its record on disk %s (%d phases)",
					b.ID, got.State, len(got.Phases), disk.State, len(disk.Phases))
			}
			if builder.Final(got.State) {
				break
			}
			select {
			case <-ch:
			case <-testguard.Context(t).Done():
				t.Fatalf("build %s did not end", b.ID)
			}
		}
	}
}
