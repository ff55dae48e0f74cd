package faults_test

import (
	"os"
	"testing"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/internal/testbin"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/sandbox"
)

// hostEnv is the real backend this host tests (lvmtest.BackendEnv: file
// unless told btrfs).
var hostEnv = lvmtest.HostEnv()

// moreEnvs are the backends other files of this package add (the lvm2
// one, built with -tags lvm2 for the VM).
var moreEnvs []lvmtest.Env

func TestMain(m *testing.M) {
	// Builds re-execute the test binary as their sandbox's init, and the
	// crash matrix runs it again as the process it kills.
	sandbox.Main()
	probe.Main()
	faults.HelperMain(append([]lvmtest.Env{hostEnv}, moreEnvs...)...)
	code := testguard.Main(m)
	testbin.Remove()
	probe.Remove()
	os.Exit(code)
}
