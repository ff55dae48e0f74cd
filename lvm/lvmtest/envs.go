package lvmtest

import (
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/btrfs"
	"github.com/thinroot/thinroot/lvm/file"
	"github.com/thinroot/thinroot/lvm/lvm2"
	"github.com/thinroot/thinroot/lvm/lvm2/lvm2test"
	"github.com/thinroot/thinroot/lvm/memory"
)

// The backends' envs, in one place for every package's tests.

// Memory is the memory backend: the Manager, its journal and recovery as
// an ordinary user, on volumes that are records and mounts that are
// entries in a table. Its bootstrap writes one file where a real one would
// make a root.
func Memory() Env {
	return Env{
		Name:         memory.Kind,
		Unprivileged: true,
		Mounter:      func(stateDir string) lvm.Mounter { return memory.NewMounter(stateDir) },
		Bootstrap:    []string{"/bin/sh", "-c", `mkdir -p "$ROOT/etc" && echo "thinroot busybox buildroot" > "$ROOT/etc/issue"`},
		Fill: func(t testing.TB, stateDir, pool string, share float64) {
			t.Helper()
			if err := memory.Fill(stateDir, pool, share); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// File is the file backend: real XFS pool images, ext4 volumes on loop
// devices. Root only.
func File() Env { return Env{Name: file.Kind} }

// Btrfs is the btrfs backend: subvolumes in a btrfs pool image,
// bind-mounted. Root only.
func Btrfs() Env { return Env{Name: btrfs.Kind} }

// LVM2 is the lvm2 backend on the VM's volume group (lvm2test), with
// small pools so that parallel tests fit the group. Tests using it call
// lvm2test.VG first (it skips them outside the VM).
func LVM2() Env {
	return Env{
		Name:       lvm2.Kind,
		Options:    lvm2.Spec(lvm2test.VGName).Options,
		RemovePool: lvm2test.RemovePool,
		// Random data is slow to write under an emulated CPU; 64 MB still
		// tells shared blocks from copies.
		SpacePadMB: 64,
		PoolSize:   768 << 20,
	}
}

// BackendEnv is the variable that chooses the backend of the tests that
// run on one real backend of this host (the tree's, the builder's, the
// fault suite's): "file" (the default) or "btrfs".
const BackendEnv = "THINROOT_TEST_BACKEND"

// hostEnvs are the real backends this host can run, by name.
var hostEnvs = map[string]func() Env{"file": File, "btrfs": Btrfs}

// HostEnv is the env BackendEnv names. An unknown name panics: a test run
// that asked for a backend must not quietly test another.
func HostEnv() Env {
	name := os.Getenv(BackendEnv)
	if name == "" {
		name = "file"
	}
	mk, ok := hostEnvs[name]
	if !ok {
		var names []string
		for n := range hostEnvs {
			names = append(names, n)
		}
		sort.Strings(names)
		panic(fmt.Sprintf("%s=%q: not a backend this host tests (%v)", BackendEnv, name, names))
	}
	return mk()
}
