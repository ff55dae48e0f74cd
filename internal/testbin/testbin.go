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
)

var (
	once sync.Once
	path string
	err  error
)

// Thinroot returns the path of a freshly built thinroot binary. repo is
// the module root. The binary lives in a temporary directory that the
// test process removes with Cleanup.
func Thinroot(t testing.TB, repo string) string {
	t.Helper()
	once.Do(func() {
		dir, e := os.MkdirTemp("", "thinroot-bin-")
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "thinroot")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/thinroot")
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
