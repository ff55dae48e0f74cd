package memory_test

import (
	"os"
	"testing"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

var env = lvmtest.Memory()

func TestMain(m *testing.M) {
	lvmtest.HelperMain([]lvmtest.Env{env}, nil)
	os.Exit(testguard.Main(m))
}

// TestManager runs the contract suite on the memory backend: the
// Manager's operations, its journal and recovery (helper processes killed
// half way included), with no root, devices or mounts.
func TestManager(t *testing.T) { lvmtest.Run(t, env) }
