package lvm2_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/lvm2"
	"github.com/thinroot/thinroot/lvm/lvm2/lvm2test"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// env runs the contract suite on real dm-thin pools in the VM.
var env = lvmtest.LVM2()

func TestMain(m *testing.M) {
	lvmtest.HelperMain([]lvmtest.Env{env}, nil)
	os.Exit(testguard.Main(m))
}

// TestManager is the same suite the file backend passes, on lvm2.
func TestManager(t *testing.T) {
	lvm2test.VG(t)
	lvmtest.Run(t, env)
}

// The Manager answers from its cached picture: making a workdir costs at
// most 2 lvm2 invocations, counted through the one exec wrapper, and
// reading the state none. Snapshot and remove rescan the pool under the
// config's lock first (another process may have changed it), one more. The counts per
// operation are printed as one THINROOT-LVM-COUNTS line of JSON, which
// make bench puts beside mock's (benchmark 5).
func TestManagerInvocationCounts(t *testing.T) {
	lvm2test.VG(t)
	runner := &lvm2.Runner{}
	counting := env
	be, err := lvm2.New(lvm2test.VGName, lvm2.Options{Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	counting.Open = func(stateDir string) func(backend.Spec) (backend.Backend, error) {
		return func(s backend.Spec) (backend.Backend, error) {
			if s.Kind == lvm2.Kind {
				return be, nil
			}
			return backend.Open(backend.Env{StateDir: stateDir}, s)
		}
	}
	f := lvmtest.NewFixture(t, counting)
	ctx := context.Background()
	type op struct {
		Invocations int64            `json:"invocations"`
		Commands    map[string]int64 `json:"commands"`
	}
	ops := map[string]op{}
	measure := func(name, what string, max int64, fn func() error) {
		t.Helper()
		before := runner.Counts()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		o := op{Commands: map[string]int64{}}
		for cmd, n := range runner.Counts() {
			if d := n - before[cmd]; d > 0 {
				o.Commands[cmd] = d
				o.Invocations += d
			}
		}
		t.Logf("%s: %d lvm2 invocations %v", what, o.Invocations, o.Commands)
		if max >= 0 && o.Invocations > max {
			t.Errorf("%s cost %d lvm2 invocations, want at most %d", what, o.Invocations, max)
		}
		if name != "" {
			ops[name] = o
		}
	}
	f.Config.BootstrapEnv = []string{"BOOTSTRAP_PAD_MB=0"}
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	// init from nothing: the pool is made too, as mock's first init does.
	measure("init", "init (pool, base, postinit)", -1, func() error { _, err := f.M.Init(ctx, f.Root, lvmtest.TestWriter(t)); return err })
	measure("workdir_create", "workdir create", 2, func() error { _, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "w1"); return err })
	measure("", "state and current", 0, func() error {
		f.M.State()
		_, err := f.M.Current(f.Root, "w1")
		return err
	})
	measure("snapshot", "snapshot", 3, func() error { return f.M.Snapshot(ctx, f.Root, "w1", "s1") })
	measure("workdir_remove", "workdir remove", 3, func() error { return f.M.RemoveWorkdir(ctx, f.Root, "w1") })
	// list: what a fresh thinroot list-snapshots costs, a full refresh.
	measure("list", "list (refresh)", 2, func() error { _, err := f.M.Refresh(ctx); return err })
	out, err := json.Marshal(map[string]any{
		"source":     "make test-vm: lvm2 " + lvm2Version() + " in the test VM, counted through the lvm2 backend's exec wrapper by TestManagerInvocationCounts",
		"taken":      time.Now().UTC().Format(time.RFC3339),
		"operations": ops,
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("THINROOT-LVM-COUNTS %s\n", out)
}

func lvm2Version() string {
	out, err := exec.Command("lvm", "version").Output()
	if err != nil {
		return "(unknown version)"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "LVM" && f[1] == "version:" {
			return f[2]
		}
	}
	return "(unknown version)"
}

// Autoextend: over the warn threshold a new volume grows the pool by the
// config's step from the volume group's free space; when the group has no
// room, the thresholds apply as they are and a full pool refuses.
func TestManagerAutoextend(t *testing.T) {
	lvm2test.VG(t)
	small := env
	small.PoolSize = 512 << 20
	small.VolumeSize = 1 << 30
	f := lvmtest.NewFixture(t, small)
	f.Config.AutoExtendStep = 256 << 20
	f.Init(0)
	ctx := context.Background()
	w := f.Workdir("", "filler")
	fill := func(pct float64) *lvm.PoolState {
		t.Helper()
		st, _ := f.M.Refresh(ctx)
		p := st.Pool(f.Pool)
		need := int64(float64(p.Stats.SizeBytes)*pct) - p.Stats.UsedBytes
		if need > 0 {
			out, err := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(w, fmt.Sprintf("fill-%d", time.Now().UnixNano())),
				"bs=1M", "count="+strconv.FormatInt(need>>20, 10), "conv=fsync").CombinedOutput()
			if err != nil {
				t.Logf("dd: %v %s", err, out)
			}
		}
		st, _ = f.M.Refresh(ctx)
		return st.Pool(f.Pool)
	}
	p := fill(0.80)
	before := p.Stats.SizeBytes
	t.Logf("before: %d bytes, %.1f%%", before, p.Stats.DataPercent)
	if p.Stats.DataPercent < 75 {
		t.Fatalf("fill reached only %.1f%%", p.Stats.DataPercent)
	}
	if _, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "grow"); err != nil {
		t.Fatalf("workdir over the warn threshold with autoextend: %v", err)
	}
	st, _ := f.M.Refresh(ctx)
	after := st.Pool(f.Pool).Stats.SizeBytes
	if after < before+(200<<20) {
		t.Fatalf("pool did not grow: %d -> %d bytes", before, after)
	}
	// A step the group cannot give: over the refuse threshold, refused.
	f.Config.AutoExtendStep = 1 << 40
	if err := f.M.AddConfig(f.Config); err != nil {
		t.Fatal(err)
	}
	p = fill(0.93)
	if p.Stats.Status != lvm.StatusFull {
		t.Fatalf("status %s at %.1f%%", p.Stats.Status, p.Stats.DataPercent)
	}
	_, err := f.M.CreateWorkdir(ctx, f.Root, lvm.PostInit, "nope")
	if !errors.Is(err, backend.ErrPoolFull) {
		t.Fatalf("full pool, no room in the group: %v, want ErrPoolFull", err)
	}
}
