package faults_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
)

// SeedEnv sets the seed of the randomized suites (default 7).
const SeedEnv = "THINROOT_FAULTS_SEED"

func seed() int64 {
	if n, err := strconv.ParseInt(os.Getenv(SeedEnv), 10, 64); err == nil {
		return n
	}
	return 7
}

var (
	raceSnaps = []string{"s1", "s2", "s3"}
	raceExts  = []string{"e1", "e2", lvm.DefaultExt}
)

// TestRaces: the CLI and two daemons (`thinroot serve` twice, on one state
// directory) act on one config at once: init (the CLI's, and the daemons'
// through a build), snapshot, rollback-to, set current, remove-snapshot,
// scrub, workdir create and remove, in rounds of three operations chosen
// at random with a fixed seed. After every round a fresh Manager and the
// disk must agree, every invariant must hold, and the picture must be one
// a serial order of the round's operations gives (faults.Explain).
func TestRaces(t *testing.T) {
	r := faults.Record(t, "races", "CLI and two daemons on one config", hostEnv.Name)
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{Exts: []string{"e1", "e2"}})
	dir := probe.PublicDir(t)
	var daemons []*server
	for _, name := range []string{"d1", "d2"} {
		mnt := filepath.Join(dir, name)
		os.Mkdir(mnt, 0o755)
		daemons = append(daemons, startServer(t, w, "serve", mnt))
	}
	rnd := rand.New(rand.NewSource(seed()))
	pic := w.Picture(w.NewManagerFor())
	rounds := 12 * faults.Runs()
	for round := 0; round < rounds && !t.Failed(); round++ {
		r.Run()
		actors := []func() faults.Done{
			cliOp(t, w, rnd, pic),
			treeOp(t, w, daemons[0], "d1", rnd, pic, round),
			treeOp(t, w, daemons[1], "d2", rnd, pic, round),
		}
		dones := make([]faults.Done, len(actors))
		var wg sync.WaitGroup
		for i, a := range actors {
			wg.Add(1)
			go func() { defer wg.Done(); dones[i] = a() }()
		}
		wg.Wait()
		for i, d := range daemons {
			r.Check(!d.exited(), "round %d: daemon d%d died:\n%s", round, i+1, d.logText())
		}
		m := w.NewManagerFor()
		got := w.Picture(m)
		disk, err := w.DiskPicture()
		r.Check(err == nil && disk.String() == got.String(), "round %d: a fresh Manager and the disk disagree (%v):\nmanager %s\ndisk    %s",
			round, err, got, disk)
		w.CheckInvariants(m, r)
		order, ok := faults.Explain(pic, dones, got)
		var lines []string
		for _, d := range dones {
			lines = append(lines, "  "+d.String())
		}
		if r.Check(ok, "round %d: no serial order of\n%s\nturns\n  %s\ninto\n  %s", round, strings.Join(lines, "\n"), pic, got) {
			t.Logf("round %d: %s", round, strings.Join(order, "; "))
		}
		for _, d := range dones {
			if d.OK {
				r.Outcome("accepted")
			} else {
				r.Outcome("refused")
			}
		}
		pic = got
	}
}

func pick[T any](rnd *rand.Rand, xs []T) T { return xs[rnd.Intn(len(xs))] }

// existing returns the snapshots of the config in p, or the fallback.
func snapsOf(p faults.Picture, root string) []string {
	var out []string
	for s := range p.Configs[root].Snapshots {
		out = append(out, s)
	}
	if len(out) == 0 {
		return []string{lvm.PostInit}
	}
	return out
}

// cliOp picks an operation for the CLI and returns the function that runs it.
func cliOp(t *testing.T, w *faults.World, rnd *rand.Rand, p faults.Picture) func() faults.Done {
	c := p.Configs[w.Root]
	op := faults.Op{Root: w.Root}
	var verb string
	var args []string
	var maybe []faults.Op
	switch n := rnd.Intn(20); {
	case !c.Ready && n < 12, n == 0:
		// init takes what follows "--" as its bootstrap argv.
		op.Kind, verb = "init", "init "+w.Root
	case n == 1:
		op.Kind, verb, args = "scrub", "scrub", []string{w.Root}
	case n < 5:
		op.Kind, op.Ext, op.Name = "snapshot", pick(rnd, raceExts), pick(rnd, raceSnaps)
		verb, args = "snapshot --uniqueext "+op.Ext, []string{w.Root, op.Name}
	case n < 8:
		op.Kind, op.Ext, op.Snap = "rollback-to", lvm.DefaultExt, pick(rnd, append(snapsOf(p, w.Root), "s3"))
		verb, args = "rollback-to", []string{w.Root, op.Snap}
		maybe = []faults.Op{{Kind: "set-current", Root: w.Root, Ext: lvm.DefaultExt, Snap: op.Snap}}
	case n < 11:
		op.Kind, op.Snap = "remove-snapshot", pick(rnd, raceSnaps)
		verb, args = "remove-snapshot", []string{w.Root, op.Snap}
	case n < 16:
		op.Kind, op.Snap, op.Ext = "workdir-create", pick(rnd, snapsOf(p, w.Root)), pick(rnd, raceExts)
		verb, args = "workdir create --snapshot "+op.Snap, []string{w.Root, op.Ext}
	default:
		op.Kind, op.Ext = "workdir-remove", pick(rnd, raceExts)
		verb, args = "workdir remove", []string{w.Root, op.Ext}
	}
	return func() faults.Done {
		out, err := cli(testguard.Context(t), t, w, verb, args...)
		d := faults.Done{Actor: "cli", Op: op, OK: err == nil, Maybe: maybe}
		if err != nil {
			d.Err = lastLine(out)
		}
		return d
	}
}

// treeOp picks an operation for a daemon: through its tree, or a build
// through its API (which initializes the config when it must).
func treeOp(t *testing.T, w *faults.World, d *server, name string, rnd *rand.Rand, p faults.Picture, round int) func() faults.Done {
	c := p.Configs[w.Root]
	_, snaps := treePaths(d.mnt, w)
	config := filepath.Dir(snaps)
	op := faults.Op{Root: w.Root}
	var do func() error
	var maybe []faults.Op
	switch n := rnd.Intn(20); {
	case !c.Ready && n < 8, n == 0:
		op.Kind = "init"
		ext := fmt.Sprintf("b%d%s", round, name)
		maybe = []faults.Op{{Kind: "init", Root: w.Root}}
		do = func() error { return build(testguard.Deadline(t), d.socket, w.Root, ext) }
	case n < 6:
		op.Kind, op.Snap, op.Ext = "workdir-create", pick(rnd, snapsOf(p, w.Root)), pick(rnd, raceExts)
		do = func() error { return os.Mkdir(filepath.Join(snaps, op.Snap, op.Ext), 0o755) }
	case n < 10:
		op.Kind, op.Ext = "workdir-remove", pick(rnd, raceExts)
		under, ok := c.Workdirs[op.Ext]
		if !ok {
			under = pick(rnd, snapsOf(p, w.Root))
		}
		do = func() error { return syscall.Rmdir(filepath.Join(snaps, under, op.Ext)) }
	case n < 14:
		op.Kind, op.Ext, op.Name = "snapshot", pick(rnd, raceExts), pick(rnd, raceSnaps)
		under := c.Workdirs[op.Ext]
		do = func() error { return writeAction(filepath.Join(snaps, under, op.Ext, "snapshot"), op.Name+"\n") }
	case n < 16:
		op.Kind, op.Ext, op.Snap = "set-current", lvm.DefaultExt, pick(rnd, append(snapsOf(p, w.Root), "s3"))
		do = func() error { return writeAction(filepath.Join(config, "current"), op.Snap+"\n") }
	default:
		op.Kind, op.Snap = "remove-snapshot", pick(rnd, raceSnaps)
		do = func() error { return syscall.Rmdir(filepath.Join(snaps, op.Snap)) }
	}
	return func() faults.Done {
		err := do()
		dn := faults.Done{Actor: name, Op: op, OK: err == nil, Maybe: maybe}
		if err != nil {
			dn.Err = err.Error()
		}
		return dn
	}
}

// writeAction is `echo DATA > path`.
func writeAction(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(data))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// build submits a build of `true` through a daemon's API and waits for it.
func build(deadline time.Time, sock, root, ext string) error {
	body, _ := json.Marshal(builder.Request{Config: root, UniqueExt: ext, Command: []string{"/bin/true"}})
	hc := apiClient(sock)
	hc.Timeout = 3 * time.Minute
	resp, err := hc.Post("http://thinroot/v1/builds", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var b builder.Build
	err = json.NewDecoder(resp.Body).Decode(&b)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 {
		return fmt.Errorf("submit: %d %v", resp.StatusCode, err)
	}
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		resp, err := hc.Get("http://thinroot/v1/builds/" + b.ID)
		if err != nil {
			return err
		}
		err = json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if builder.Final(b.State) {
			if b.State != builder.StateSucceeded {
				return fmt.Errorf("build %s: %s: %s", b.ID, b.State, b.Error)
			}
			return nil
		}
	}
	return fmt.Errorf("build %s did not end", b.ID)
}

// TestSecondDaemonDuringBuild: a second daemon starts on the same state
// directory while the first one runs a build. The build is the first
// daemon's: the newcomer must neither mark it interrupted nor remove its
// workdir, and the build ends as it would have.
func TestSecondDaemonDuringBuild(t *testing.T) {
	r := faults.Record(t, "races", "second daemon starts during a build", hostEnv.Name)
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{})
	w.Init(0)
	dir := probe.PublicDir(t)
	mnt1, mnt2 := filepath.Join(dir, "d1"), filepath.Join(dir, "d2")
	os.Mkdir(mnt1, 0o755)
	os.Mkdir(mnt2, 0o755)
	d1 := startServer(t, w, "serve", mnt1)
	for run := 0; run < faults.Runs(); run++ {
		r.Run()
		gate := filepath.Join(t.TempDir(), "go")
		body, _ := json.Marshal(builder.Request{Config: w.Root, UniqueExt: fmt.Sprintf("long%d", run),
			Command: []string{"/bin/sh", "-c", `echo started; while [ ! -e /builddir/results/go ]; do sleep 0.1; done; echo done`}})
		resp, err := apiClient(d1.socket).Post("http://thinroot/v1/builds", "application/json", bytes.NewReader(body))
		r.Must(err == nil && resp.StatusCode == 201, "submit: %v", err)
		var b builder.Build
		json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		logPath := filepath.Join(w.StateDir, "builds", b.ID, "log")
		// A build that ends instead of starting ends the wait too.
		lvmtestWait(t, "the build to start", func() bool {
			return strings.Contains(readOr(logPath), "started") || builder.Final(getBuild(t, d1.socket, b.ID).State)
		})
		rec := getBuild(t, d1.socket, b.ID)
		r.Must(rec.State == builder.StateBuilding, "run %d: the build is %s (%s), want building", run, rec.State, rec.Error)

		d2 := startServer(t, w, "serve", mnt2)
		time.Sleep(500 * time.Millisecond)
		after := getBuild(t, d1.socket, b.ID)
		r.Check(after.State == builder.StateBuilding, "the first daemon's build is %s after a second daemon started, want building", after.State)
		_, err = os.Stat(filepath.Join(rec.Workdir, "etc", "issue"))
		r.Check(err == nil, "the running build's workdir is gone after a second daemon started: %v", err)
		r.Check(!strings.Contains(d2.logText(), "build was interrupted"), "the second daemon interrupted a build it does not run")
		os.WriteFile(gate, nil, 0o644)
		os.WriteFile(filepath.Join(rec.ResultDir, "go"), nil, 0o644)
		lvmtestWait(t, "the build to end", func() bool { return builder.Final(getBuild(t, d1.socket, b.ID).State) })
		fin := getBuild(t, d1.socket, b.ID)
		r.Check(fin.State == builder.StateSucceeded, "the build ended %s (%s)", fin.State, fin.Error)
		d2.cmd.Process.Signal(syscall.SIGTERM)
		d2.waitExit(15 * time.Second)
		// The second daemon's view of the build, now that it is over.
		var onDisk builder.Build
		data, _ := os.ReadFile(filepath.Join(w.StateDir, "builds", b.ID, "build.json"))
		json.Unmarshal(data, &onDisk)
		r.Check(onDisk.State == builder.StateSucceeded, "the build's record says %s", onDisk.State)
	}
}

func getBuild(t *testing.T, sock, id string) builder.Build {
	t.Helper()
	resp, err := apiClient(sock).Get("http://thinroot/v1/builds/" + id)
	if err != nil {
		t.Fatalf("get build %s: %v", id, err)
	}
	defer resp.Body.Close()
	var b builder.Build
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatalf("get build %s: %v", id, err)
	}
	return b
}

func lvmtestWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := testguard.Deadline(t)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
