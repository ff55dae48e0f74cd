package faults_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/probe"
)

// TestDaemonKilledDuringBuild: `thinroot serve` is SIGKILLed at a random
// moment (fixed seed) of a build, from its submission to its end. The
// restarted daemon closes the build (interrupted, or succeeded if it had
// ended), leaves nothing half made or leaked (the invariants), keeps the
// volumes as they were (a build's workdir goes either way), and runs the
// same build again to success.
func TestDaemonKilledDuringBuild(t *testing.T) {
	r := faults.Record(t, "crash", "daemon killed at a random moment of a build", hostEnv.Name)
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{Exts: []string{"rb"}})
	w.Init(0)
	mnt := filepath.Join(probe.PublicDir(t), "tree")
	os.Mkdir(mnt, 0o755)
	rnd := rand.New(rand.NewSource(seed()))
	req := builder.Request{Config: w.Root, UniqueExt: "rb",
		Command: []string{"/bin/sh", "-c", `echo started; sleep 0.2; echo made > "$RESULTS/out"`}}
	body, _ := json.Marshal(req)
	for run := 0; run < 4*faults.Runs() && !t.Failed(); run++ {
		r.Run()
		before := w.Picture(w.NewManagerFor())
		s := startServer(t, w, "serve", mnt)
		code, msg := apiPost(t, s.socket, "/v1/builds", body)
		r.Must(code == 201, "submit: %d %s", code, msg)
		delay := time.Duration(rnd.Intn(500)) * time.Millisecond
		time.Sleep(delay)
		s.kill()

		s = startServer(t, w, "serve", mnt)
		id := firstBuild(t, s.socket)
		b := getBuild(t, s.socket, id)
		r.Check(b.State == builder.StateInterrupted || b.State == builder.StateSucceeded,
			"killed after %v: the build is %s after the restart", delay, b.State)
		r.Outcome(fmt.Sprintf("build %s", b.State))
		m := w.NewManagerFor()
		w.CheckInvariants(m, r)
		got := w.Picture(m)
		r.Check(got.String() == before.String(), "killed after %v:\nbefore %s\nafter  %s", delay, before, got)
		code, msg = apiPost(t, s.socket, "/v1/builds", body)
		r.Must(code == 201, "submit again: %d %s", code, msg)
		id = firstBuild(t, s.socket)
		lvmtestWait(t, "the build", func() bool { return builder.Final(getBuild(t, s.socket, id).State) })
		b = getBuild(t, s.socket, id)
		r.Check(b.State == builder.StateSucceeded, "killed after %v: the next build is %s: %s", delay, b.State, b.Error)
		s.kill()
	}
}
