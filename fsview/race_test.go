package fsview_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/mock"
)

// readers run ls and cat of paths that never go away until stop is
// closed, and report any failure.
func readers(t *testing.T, m *mounted, n int, stop <-chan struct{}) func() {
	var wg sync.WaitGroup
	var failures atomic.Int64
	var first atomic.Value
	var rounds atomic.Int64
	fail := func(err error) {
		if failures.Add(1) == 1 {
			first.Store(err)
		}
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, d := range []string{filepath.Join(m.Mnt, "workdirs"), m.snap("postinit"), m.snaps(), m.pool(), m.Mnt} {
					if _, err := os.ReadDir(d); err != nil {
						fail(err)
					}
				}
				for _, p := range []string{filepath.Join(m.pool(), "stats"), filepath.Join(m.config(), "current"),
					filepath.Join(m.config(), "state"), filepath.Join(m.snap("postinit"), ".info")} {
					b, err := os.ReadFile(p)
					if err == nil && len(b) == 0 {
						err = fmt.Errorf("%s read empty", p)
					}
					if err != nil {
						fail(err)
					}
				}
				b, err := os.ReadFile(filepath.Join(m.pool(), "stats.json"))
				if err == nil {
					var v map[string]any
					err = json.Unmarshal(b, &v)
				}
				if err != nil {
					fail(fmt.Errorf("stats.json: %w", err))
				}
				rounds.Add(1)
			}
		}()
	}
	return func() {
		wg.Wait()
		if n := failures.Load(); n > 0 {
			t.Errorf("%d reads failed while the tree changed; first: %v", n, first.Load())
		}
		t.Logf("readers did %d rounds of ls and cat", rounds.Load())
	}
}

// TestRaces: parallel mkdirs of one name make one workdir; of different
// names, all of them; readers never see an error meanwhile.
func TestRaces(t *testing.T) {
	f := world(t)
	m := mountTree(t, f, nil, 100*time.Millisecond)
	stop := make(chan struct{})
	wait := readers(t, m, 4, stop)
	defer func() { close(stop); wait() }()

	// 32 of the same name.
	var ok, exist atomic.Int64
	var other sync.Map
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := os.Mkdir(filepath.Join(m.snap("postinit"), "same"), 0o755)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, syscall.EEXIST):
				exist.Add(1)
			default:
				other.Store(err.Error(), true)
			}
		}()
	}
	wg.Wait()
	other.Range(func(k, _ any) bool { t.Errorf("mkdir failed: %v", k); return true })
	if ok.Load() != 1 || exist.Load() != 31 {
		t.Fatalf("32 mkdirs of one name: %d succeeded, %d EEXIST; want 1 and 31", ok.Load(), exist.Load())
	}
	// One volume on disk, as a fresh process sees it.
	st, err := f.NewManager().Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_, cs := st.Config(f.Root)
	for _, w := range cs.Workdirs {
		if w.Ext == "same" {
			n++
		}
	}
	if n != 1 || countVolumes(t, f.StateDir, f.Pool, mock.WorkdirVolume(f.Root, "same")) != 1 {
		t.Fatalf("%d workdirs named same in the state, want 1", n)
	}

	// 16 of different names.
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = os.Mkdir(filepath.Join(m.snap("postinit"), fmt.Sprintf("p%02d", i)), 0o755)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("mkdir p%02d: %v", i, err)
		}
	}
	if got := len(m.names(m.snap("postinit"))); got != 2+1+16 {
		t.Fatalf("postinit lists %d entries, want .info, .info.json and 17 workdirs", got)
	}
	// And remove them all in parallel.
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = syscall.Rmdir(filepath.Join(m.snap("postinit"), fmt.Sprintf("p%02d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rmdir p%02d: %v", i, err)
		}
	}
}

// countVolumes counts the volumes named lv the backend has in pool.
func countVolumes(t testing.TB, stateDir, pool, lv string) int {
	t.Helper()
	r, err := env.Backend(t, stateDir).Scan(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, v := range r.Volumes {
		if v.Name == lv {
			n++
		}
	}
	return n
}

// gatedModel holds CreateWorkdir until its gate opens.
type gatedModel struct {
	*lvm.Manager
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedModel) CreateWorkdir(ctx context.Context, root, snap, ext string) (*lvm.WorkdirState, error) {
	close(g.entered)
	<-g.gate
	return g.Manager.CreateWorkdir(ctx, root, snap, ext)
}

// TestSlowMkdirDoesNotStall: while a mkdir is held inside the backend for
// as long as it takes, reads of other directories and files answer: they
// complete while the mkdir is still held, which they could not if they
// waited for it. (No time bound: a loaded machine is slow, not wrong.)
func TestSlowMkdirDoesNotStall(t *testing.T) {
	f := world(t)
	g := gatedModel{f.M, make(chan struct{}), make(chan struct{})}
	m := mountTree(t, f, g, 100*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- os.Mkdir(filepath.Join(m.snap("postinit"), "slow"), 0o755) }()
	testguard.Call(t, "the mkdir to reach the backend", func() error { <-g.entered; return nil })
	for round := 0; round < 5; round++ {
		err := testguard.CallWithin(t, "reads while a mkdir is held", 60*time.Second, func() error {
			m.read(filepath.Join(m.pool(), "stats"))
			m.names(filepath.Join(m.Mnt, "workdirs"))
			m.names(m.snaps())
			m.read(filepath.Join(m.config(), "current"))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the mkdir ended (%v) before its backend call was let go", err)
	default:
	}
	close(g.gate)
	if err := testguard.Call(t, "the mkdir once let go", func() error { return <-done }); err != nil {
		t.Fatal(err)
	}
}
