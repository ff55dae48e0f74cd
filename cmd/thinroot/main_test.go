package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Global flags work before the verb as well as after it.
func TestGlobalFlagsBeforeVerb(t *testing.T) {
	for _, args := range [][]string{
		{"--state-dir", "STATE", "pool", "list"},
		{"pool", "list", "--state-dir", "STATE"},
	} {
		dir := filepath.Join(t.TempDir(), "state")
		for i := range args {
			if args[i] == "STATE" {
				args[i] = dir
			}
		}
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("%v: the state dir given was not used: %v", args, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"no-such-verb"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown verb: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"workdir", "create", "--state-dir", t.TempDir(), "only-one-arg"}, &out, &errb); code != 2 {
		t.Fatalf("missing argument: exit %d %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "thinroot ") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
}

// A dead FUSE mount answers ENOTCONN, and ECONNABORTED while the kernel
// still aborts the requests that were in flight when its server died;
// serve and mount detach it either way. Only ENOTCONN was known, so a
// restart right after a kill failed ("file exists").
func TestDeadMountErrnos(t *testing.T) {
	for _, c := range []struct {
		err  error
		dead bool
	}{
		{unix.ENOTCONN, true}, {unix.ECONNABORTED, true}, {&os.PathError{Op: "statfs", Path: "/x", Err: unix.ECONNABORTED}, true},
		{unix.ENOENT, false}, {unix.EACCES, false}, {nil, false},
	} {
		if got := deadMount(c.err); got != c.dead {
			t.Errorf("deadMount(%v) = %v, want %v", c.err, got, c.dead)
		}
	}
}
