package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/lvm"
)

// badNames are the classes of names every entry point must refuse.
var badNames = []struct{ class, name string }{
	{"slash", "a/b"},
	{"dot-dot", ".."},
	{"NUL", "nul\x00byte"},
	{"newline", "new\nline"},
	{"256 bytes", strings.Repeat("x", 256)},
	{"1000 bytes", strings.Repeat("x", 1000)},
	{"2000 bytes", strings.Repeat("x", 2000)},
	{"non-UTF-8", "\xff\xfe"},
	{"leading dash", "-rf"},
	{"leading dot", ".hidden"},
	{"dot inside", "dot.ted"},
	{"space", "sp ace"},
	{"reserved _tmeta", "snap_tmeta"},
	{"reserved _rimage", "x_rimage"},
	{"empty", ""},
}

// TestBadNames: every class of bad name is refused through the tree
// (EINVAL where the name reaches it; the kernel refuses '/', '..', NUL
// and names over FUSE's 1024 bytes before), through the CLI and the
// Manager (with the reason), and through the API (400 with the reason),
// and nothing changes.
func TestBadNames(t *testing.T) {
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{})
	w.Init(0)
	mnt := filepath.Join(probe.PublicDir(t), "tree")
	os.Mkdir(mnt, 0o755)
	s := startServer(t, w, "serve", mnt)
	config, snaps := treePaths(mnt, w)
	before := w.Picture(w.M)
	ctx := context.Background()
	byWorkdir := filepath.Join(mnt, "pools", w.Pool, "configs", faults.BystanderRoot, "snapshots", lvm.PostInit, faults.BystanderExt)

	for _, c := range badNames {
		t.Run(c.class, func(t *testing.T) {
			r := faults.Record(t, "bad-input", "name: "+c.class, hostEnv.Name)
			r.Run()
			// The tree: mkdir of a workdir with that name.
			err := os.Mkdir(filepath.Join(snaps, lvm.PostInit, c.name), 0o755)
			switch c.class {
			case "slash":
				r.Check(errors.Is(err, syscall.ENOENT), "mkdir %q: %v, want ENOENT (the kernel walks the '/')", c.name, err)
				r.Leave("mkdir never hands a name with '/' to the tree: the kernel walks it as a path (ENOENT here), so the tree cannot answer EINVAL; action files, CLI and API refuse it with the reason")
			case "dot-dot":
				r.Check(errors.Is(err, syscall.EEXIST), "mkdir %q: %v, want EEXIST (the kernel's '..')", c.name, err)
				r.Leave("mkdir of '..' is the kernel's (EEXIST) and never reaches the tree; action files, CLI and API refuse it with the reason")
			case "NUL", "empty":
				r.Check(errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EEXIST),
					"mkdir %q: %v, want refused before the tree", c.name, err)
				if c.class == "NUL" {
					r.Leave("a path cannot carry NUL: mkdir fails in the C library/Go (EINVAL) before the tree; action files and the API refuse it with the reason; argv cannot carry it to the CLI")
				}
			case "2000 bytes":
				r.Check(errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENAMETOOLONG),
					"mkdir of %d bytes: %v, want EINVAL (or ENAMETOOLONG from the kernel)", len(c.name), err)
			default:
				r.Check(errors.Is(err, syscall.EINVAL), "mkdir %q: %v, want EINVAL", c.name, err)
			}
			// The action files: one write of the name and a newline.
			for _, f := range []string{filepath.Join(config, "current"), filepath.Join(byWorkdir, "snapshot")} {
				err := writeAction(f, c.name+"\n")
				r.Check(errors.Is(err, syscall.EINVAL), "echo %q > %s: %v, want EINVAL", c.name, filepath.Base(f), err)
			}
			// The Manager: a NameError with a reason.
			var ne *lvm.NameError
			_, err = w.M.CreateWorkdir(ctx, w.Root, lvm.PostInit, c.name)
			r.Check(errors.As(err, &ne) && ne.Reason != "", "CreateWorkdir(%q): %v, want a NameError with a reason", c.name, err)
			err = w.M.Snapshot(ctx, faults.BystanderRoot, faults.BystanderExt, c.name)
			r.Check(errors.As(err, &ne) && ne.Reason != "", "Snapshot(%q): %v, want a NameError with a reason", c.name, err)
			// The CLI (argv cannot carry a NUL).
			if !strings.Contains(c.name, "\x00") {
				out, err := cli(ctx, t, w, "workdir create", w.Root, c.name)
				r.Check(err != nil && strings.Contains(out, "invalid unique-ext name"), "workdir create %q: %v\n%s", c.name, err, out)
				out, err = cli(ctx, t, w, "remove-snapshot", w.Root, c.name)
				r.Check(err != nil && strings.Contains(out, "invalid snapshot name"), "remove-snapshot %q: %v\n%s", c.name, err, out)
			}
			if c.class == "leading dash" {
				// Without "--" the name is an option to the CLI, as to any
				// getopt program: refused as one, naming it.
				argv := append([]string{"workdir", "create"}, worldFlags(t, w)...)
				out, err := exec.Command(thinrootBin(t), append(argv, w.Root, c.name)...).CombinedOutput()
				r.Check(err != nil && strings.Contains(string(out), "-rf"), "workdir create %s without --: %v\n%s", c.name, err, out)
				r.Leave("the CLI reads a name starting with '-' as an option unless it follows '--' (a usage error naming it, exit 2); after '--' it refuses the name with the reason")
			}
			// The API (where an empty name means the default).
			for _, field := range []string{"uniqueext", "snapshot"} {
				if c.name == "" {
					break
				}
				body, _ := json.Marshal(map[string]any{"config": w.Root, "command": []string{"/bin/true"}, field: c.name})
				code, msg := apiPost(t, s.socket, "/v1/builds", body)
				r.Check(code == http.StatusBadRequest && strings.Contains(msg, "invalid"), "API %s %q: %d %q, want 400 with the reason",
					field, c.name, code, msg)
			}
		})
	}
	t.Run("oversized writes", func(t *testing.T) {
		r := faults.Record(t, "bad-input", "oversized and misplaced action writes", hostEnv.Name)
		for _, n := range []int{257, 4096, 200 << 10, 1 << 20} {
			r.Run()
			data := strings.Repeat("s", n-1) + "\n"
			err := writeAction(filepath.Join(config, "current"), data)
			r.Check(errors.Is(err, syscall.EINVAL), "a %d-byte write to current: %v, want EINVAL", n, err)
		}
		// Two writes (a name, then its newline at offset 2): the second is refused.
		f, err := os.OpenFile(filepath.Join(byWorkdir, "snapshot"), os.O_WRONLY|os.O_TRUNC, 0)
		r.Must(err == nil, "open: %v", err)
		_, err1 := f.Write([]byte("s9"))
		_, err2 := f.Write([]byte("\n"))
		f.Close()
		r.Runs(1)
		r.Check(err1 == nil && errors.Is(err2, syscall.EINVAL), "split write: %v, %v; want ok then EINVAL", err1, err2)
		r.Check(w.M.RemoveSnapshot(ctx, faults.BystanderRoot, "s9") == nil, "the first write's snapshot")
		r.Check(w.M.SetCurrent(ctx, faults.BystanderRoot, faults.BystanderExt, faults.BystanderSnap) == nil, "restore the current snapshot")
		r.Check(strings.Contains(s.logText(), "tree operation refused"), "the daemon logs no refusal")
	})
	// Nothing changed.
	after := w.Picture(w.NewManagerFor())
	if after.String() != before.String() {
		t.Fatalf("bad input changed the volumes:\nbefore %s\nafter  %s", before, after)
	}
}

func apiPost(t *testing.T, sock, path string, body []byte) (int, string) {
	t.Helper()
	resp, err := apiClient(sock).Post("http://thinroot"+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var e builder.APIError
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}
