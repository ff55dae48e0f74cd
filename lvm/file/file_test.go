package file_test

import (
	"os"
	"testing"

	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

var env = lvmtest.Env{
	Name: "file",
	Backends: func(stateDir string) map[string]lvm.Backend {
		return map[string]lvm.Backend{file.Kind: file.New(stateDir, nil)}
	},
	Config: func(root, pool string) lvm.Config {
		return lvm.Config{Backend: file.Kind}
	},
}

func TestMain(m *testing.M) {
	lvmtest.HelperMain(env)
	os.Exit(testguard.Main(m))
}

// TestManager runs the shared Manager suite on real XFS pool images with
// ext4 volumes.
func TestManager(t *testing.T) { lvmtest.Run(t, env) }
