// Package testbin builds the thinroot binary once per test process, for
// tests that need it as a separate process (a daemon to kill, a CLI run).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/thinroot/thinroot/internal/crashpoint"
)

var (
	once sync.Once
	path string
	err  error
)

// Thinroot returns the path of a freshly built thinroot binary. repo is
// the module root. The binary lives in a temporary directory that the
// test process removes with Cleanup. It has crash points when the test
// binary has them (built with the same tag), so that fault tests can
// arm them in the daemon.
func Thinroot(t testing.TB, repo string) string {
	t.Helper()
	once.Do(func() {
		dir, e := os.MkdirTemp("", "thinroot-bin-")
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "thinroot")
		args := []string{"build", "-o", path}
		if crashpoint.Enabled {
			args = append(args, "-tags", crashpoint.Tag)
		}
		cmd := exec.Command("go", append(args, "./cmd/thinroot")...)
		cmd.Dir = repo
		if out, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go build: %v\n%s", e, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Remove deletes the built binary; call it from TestMain after m.Run.
func Remove() {
	if path != "" {
		os.RemoveAll(filepath.Dir(path))
	}
}
