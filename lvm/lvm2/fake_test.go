package lvm2

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeLVM is a stand-in lvm binary for parsing and error-mapping tests
// only (what lvm2 really does is tested in the VM). For "lvm CMD ..." it
// prints dir/CMD.stdout and dir/CMD.stderr, sleeps dir/CMD.sleep seconds,
// touches dir/CMD.done, and exits with dir/CMD.exit (default 0). Every call
// is appended to dir/calls, one line of arguments each.
type fakeLVM struct {
	t   *testing.T
	dir string
	bin string
}

const fakeScript = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >>"$d/calls"
[ -f "$d/$1.stdout" ] && cat "$d/$1.stdout"
[ -f "$d/$1.stderr" ] && cat "$d/$1.stderr" >&2
[ -f "$d/$1.sleep" ] && sleep "$(cat "$d/$1.sleep")"
[ "$LC_ALL" = C ] || { echo "LC_ALL is not C" >&2; exit 99; }
touch "$d/$1.done"
exit "$(cat "$d/$1.exit" 2>/dev/null || echo 0)"
`

func newFakeLVM(t *testing.T) *fakeLVM {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "lvm")
	if err := os.WriteFile(bin, []byte(fakeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fakeLVM{t: t, dir: dir, bin: bin}
}

// set gives command cmd its output: stdout, stderr, exit code.
func (f *fakeLVM) set(cmd, stdout, stderr string, exit int) {
	f.t.Helper()
	f.write(cmd+".stdout", stdout)
	f.write(cmd+".stderr", stderr)
	f.write(cmd+".exit", strconv.Itoa(exit))
}

func (f *fakeLVM) write(name, text string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeLVM) calls() []string {
	b, err := os.ReadFile(filepath.Join(f.dir, "calls"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func (f *fakeLVM) done(cmd string) bool {
	_, err := os.Stat(filepath.Join(f.dir, cmd+".done"))
	return err == nil
}

// fixture reads a file recorded from real lvm2 under testdata/lvm2.
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "lvm2", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// errorFixture reads a recorded failure: its exit code, command and stderr.
func errorFixture(t *testing.T, name string) (exit int, command, stderr string) {
	t.Helper()
	text := fixture(t, "errors/"+name+".txt")
	lines := strings.SplitN(text, "\n", 3)
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "exit ") || !strings.HasPrefix(lines[1], "command ") {
		t.Fatalf("errors/%s.txt: bad fixture", name)
	}
	exit, err := strconv.Atoi(strings.TrimPrefix(lines[0], "exit "))
	if err != nil {
		t.Fatalf("errors/%s.txt: %v", name, err)
	}
	return exit, strings.TrimPrefix(lines[1], "command "), lines[2]
}
