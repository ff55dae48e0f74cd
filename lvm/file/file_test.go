package file_test

import (
	"os"
	"testing"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

var env = lvmtest.File()

func TestMain(m *testing.M) {
	lvmtest.HelperMain([]lvmtest.Env{env}, nil)
	os.Exit(testguard.Main(m))
}

// TestManager runs the contract suite on real XFS pool images with ext4
// volumes.
func TestManager(t *testing.T) { lvmtest.Run(t, env) }
