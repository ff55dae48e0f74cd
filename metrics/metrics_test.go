package metrics_test

import (
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/metrics"
)

func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }

// A daemon without metrics passes a nil *Metrics around: every method is
// a no-op then.
func TestNilIsNoop(t *testing.T) {
	var m *metrics.Metrics
	m.BuildFinished("c", "succeeded", time.Second, &metrics.Usage{CPUSeconds: 1})
	m.Bootstrap("c", time.Second)
	m.WorkdirCreated(time.Second)
	m.Builddep("c", true)
	m.LVMCommand("lvs", time.Second, nil)
}

func TestCountersAndSources(t *testing.T) {
	m := metrics.New(metrics.Sources{Builds: func() metrics.Builds {
		return metrics.Builds{Counts: []metrics.BuildCount{{Config: "f41", State: "queued", N: 3}}, Queued: 3, Jobs: 2}
	}})
	m.LVMCommand("lvcreate", 50*time.Millisecond, nil)
	m.LVMCommand("lvcreate", 50*time.Millisecond, errors.New("no space"))
	m.Builddep("f41", true)
	m.Builddep("f41", false)
	m.Builddep("f41", false)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`thinroot_lvm_commands_total{command="lvcreate"} 2`,
		`thinroot_lvm_command_errors_total{command="lvcreate"} 1`,
		`thinroot_builddep_snapshot_lookups_total{config="f41",result="hit"} 1`,
		`thinroot_builddep_snapshot_lookups_total{config="f41",result="miss"} 2`,
		`thinroot_builds{config="f41",state="queued"} 3`,
		"thinroot_builds_queued 3",
		"thinroot_build_slots 2",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in:\n%s", want, body)
		}
	}
}
