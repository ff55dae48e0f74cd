package lvm2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
)

// Every recorded failure maps to the kind callers branch on.
func TestErrorMapping(t *testing.T) {
	for name, want := range map[string]error{
		"vg-not-found":               backend.ErrNotFound,
		"lv-not-found":               backend.ErrNotFound,
		"lvremove-not-found":         backend.ErrNotFound,
		"lvrename-not-found":         backend.ErrNotFound,
		"lvrename-exists":            backend.ErrExists,
		"snapshot-origin-not-found":  backend.ErrNotFound,
		"thin-pool-not-found":        backend.ErrNotFound,
		"lvcreate-exists":            backend.ErrExists,
		"pool-exists":                backend.ErrExists,
		"lvremove-mounted":           backend.ErrBusy,
		"thin-in-full-pool":          backend.ErrPoolFull,
		"lvextend-no-room":           nil,
		"pool-no-room":               nil,
		"lvremove-pool-with-volumes": nil,
	} {
		t.Run(name, func(t *testing.T) {
			exit, command, stderr := errorFixture(t, name)
			args := strings.Fields(command)[1:] // drop "lvm"
			f := newFakeLVM(t)
			f.set(args[0], "", stderr, exit)
			r := &Runner{LVM: f.bin}
			_, err := r.Run(t.Context(), args[0], args[1:]...)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Run = %v, want an *Error", err)
			}
			if e.ExitCode != exit || e.Stderr != strings.TrimSpace(stderr) || e.Args[0] != f.bin || e.Args[1] != args[0] {
				t.Errorf("error %#v", e)
			}
			if e.Kind != want {
				t.Errorf("kind %v, want %v (stderr %q)", e.Kind, want, stderr)
			}
			for _, k := range []error{backend.ErrNotFound, backend.ErrExists, backend.ErrBusy, backend.ErrPoolFull} {
				if errors.Is(err, k) != (k == want) {
					t.Errorf("errors.Is(err, %v) = %v", k, !(k == want))
				}
			}
			// The message names the command and says why.
			msg := err.Error()
			last := lastLines(stderr, 1)
			if !strings.Contains(msg, args[0]) || !strings.Contains(msg, last) || !strings.Contains(msg, "exit status") {
				t.Errorf("message %q lacks the command or %q", msg, last)
			}
		})
	}
}

func TestRunKeepsStreamsApart(t *testing.T) {
	f := newFakeLVM(t)
	f.set("lvs", fixture(t, "lvs-one.json"),
		"  WARNING: Sum of all thin volume sizes exceeds the size of thin pool.\n  /usr/sbin/thin_check: execvp failed\n", 0)
	r := &Runner{LVM: f.bin}
	out, err := r.Run(t.Context(), "lvs", "thinroot_vm")
	if err != nil {
		t.Fatal(err)
	}
	lvs, err := parseLVs(out)
	if err != nil || len(lvs) != 1 {
		t.Fatalf("parse: %v, %v", lvs, err)
	}
	if r.Count("lvs") != 1 || r.Total() != 1 || r.Counts()["lvs"] != 1 {
		t.Errorf("counts %v", r.Counts())
	}
}

func TestRunMissingBinary(t *testing.T) {
	r := &Runner{LVM: filepath.Join(t.TempDir(), "no-lvm")}
	_, err := r.Run(t.Context(), "lvs")
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != -1 || e.Kind != nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run = %#v", err)
	}
}

// A mutating command runs to its end whatever happens to the caller's
// context; a report is cut short.
func TestRunCancel(t *testing.T) {
	f := newFakeLVM(t)
	f.write("lvcreate.sleep", "0.5")
	f.write("lvs.sleep", "5")
	r := &Runner{LVM: f.bin}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Run(ctx, "lvcreate", "-n", "x"); err != nil {
		t.Errorf("lvcreate under an expiring context: %v", err)
	}
	if !f.done("lvcreate") {
		t.Error("lvcreate was killed halfway")
	}

	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, "lvs")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("lvs under an expiring context: %v after %v", err, time.Since(start))
	}

	// Nothing starts once the context is done.
	before := r.Total()
	if _, err := r.Run(ctx, "lvremove", "-f", "vg/x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lvremove with a done context: %v", err)
	}
	if r.Total() != before {
		t.Error("a command was started with a done context")
	}
}

// The command lines and their number per operation.
func TestOperationCommands(t *testing.T) {
	b, f := testBackend(t)
	f.set("lvs", fixture(t, "lvs-one.json"), "", 0)
	// The device of lvs-one.json's volume, as sysfs shows it.
	lvs, _ := parseLVs([]byte(fixture(t, "lvs-one.json")))
	sysDev := filepath.Join(b.dev.sys, "dev", "block", fmt.Sprintf("%d:%d", lvs[0].Major, lvs[0].Minor))
	if err := os.MkdirAll(sysDev, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sysDev, "uevent"), []byte("MAJOR=253\nMINOR=6\nDEVNAME=dm-6\nDEVTYPE=disk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	ctx := t.Context()

	count := func(what string, want int64, fn func() error) {
		t.Helper()
		before := b.Runner().Total()
		err := fn()
		if err != nil && (root || !strings.Contains(err.Error(), "mknod")) {
			t.Errorf("%s: %v", what, err)
		}
		if n := b.Runner().Total() - before; n != want {
			t.Errorf("%s ran %d lvm2 commands, want %d: %v", what, n, want, f.calls())
		}
	}
	count("CreatePool", 1, func() error {
		return b.CreatePool(ctx, backend.PoolSpec{Name: "mockbuild", Size: 1 << 30, MetadataSize: 8 << 20, WarnPercent: 80})
	})
	count("Snapshot", 2, func() error {
		_, err := b.Snapshot(ctx, "mockbuild", "+mock.fedora-41-x86_64.head", "+mock.fedora-41-x86_64.try1", backend.SnapshotOptions{})
		return err
	})
	count("active Snapshot (workdir)", 2, func() error {
		v, err := b.Snapshot(ctx, "mockbuild", "mock.fedora-41-x86_64.postinit", "+mock.fedora-41-x86_64.try1",
			backend.SnapshotOptions{Activate: true, Tags: []string{"thinroot.x=1"}})
		if err == nil && (v.Mount.Source != filepath.Join(b.dev.dev, "dm-6") || !v.Active) {
			t.Errorf("workdir %+v", v)
		}
		return err
	})
	count("Create", 2, func() error {
		_, err := b.Create(ctx, "mockbuild", "+mock.fedora-41-x86_64.try1", 256<<20)
		return err
	})
	count("Activate (active already)", 1, func() error {
		_, err := b.Activate(ctx, "mockbuild", "+mock.fedora-41-x86_64.try1")
		return err
	})
	count("Rename (a spare handed over)", 1, func() error {
		return b.Rename(ctx, "mockbuild", "+mock.fedora-41-x86_64.try1", "+mock.fedora-41-x86_64.try2")
	})
	count("Remove", 2, func() error { return b.Remove(ctx, "mockbuild", "+mock.fedora-41-x86_64.try1") })
	count("Remove of another pool's volume", 1, func() error {
		if err := b.Remove(ctx, "mockpool", "+mock.fedora-41-x86_64.try1"); !errors.Is(err, backend.ErrNotFound) {
			return errors.New("removed a volume of another pool")
		}
		return nil
	})

	calls := f.calls()
	want := []string{
		"lvcreate --thinpool mockbuild -L 1073741824b --errorwhenfull y --yes --poolmetadatasize 8388608b --addtag thinroot.warn=80 --addtag thinroot.refuse=90 thinroot_vm",
		"lvcreate -s -n +mock.fedora-41-x86_64.try1 --setactivationskip y thinroot_vm/+mock.fedora-41-x86_64.head",
		"lvcreate -s -n +mock.fedora-41-x86_64.try1 --setactivationskip n -ay --addtag thinroot.x=1 thinroot_vm/mock.fedora-41-x86_64.postinit",
		"lvcreate --type thin --thinpool mockbuild -V 268435456b -n +mock.fedora-41-x86_64.try1 --setactivationskip n -ay thinroot_vm",
		"lvrename thinroot_vm +mock.fedora-41-x86_64.try1 +mock.fedora-41-x86_64.try2",
		"lvremove -f thinroot_vm/+mock.fedora-41-x86_64.try1",
	}
	var mutating []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "lvs ") {
			mutating = append(mutating, c)
		} else if !strings.HasPrefix(c, "lvs --reportformat json --units b --nosuffix -o lv_name,") {
			t.Errorf("report without JSON or explicit fields: %s", c)
		}
	}
	if strings.Join(mutating, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(mutating, "\n"), strings.Join(want, "\n"))
	}
}

func TestExtend(t *testing.T) {
	b, f := testBackend(t)
	f.set("vgs", fixture(t, "vgs.json"), "", 0)
	vgs, _ := parseVGs([]byte(fixture(t, "vgs.json")))
	free, err := b.FreeSpace(t.Context())
	if err != nil || free != vgs[0].Free {
		t.Fatalf("FreeSpace = %d, %v; want %d", free, err, vgs[0].Free)
	}
	if err := b.Extend(t.Context(), "mockbuild", 1<<20); err != nil {
		t.Fatal(err)
	}
	calls := f.calls()
	if last := calls[len(calls)-1]; last != "lvextend -L +1048576b thinroot_vm/mockbuild" {
		t.Errorf("lvextend: %s", last)
	}
	// One extent short of the step: refused without lvextend.
	before := b.Runner().Count("lvextend")
	err = b.Extend(t.Context(), "mockbuild", free+1)
	if !errors.Is(err, ErrNoRoom) || b.Runner().Count("lvextend") != before {
		t.Errorf("Extend past the free space: %v", err)
	}
	if !strings.Contains(err.Error(), "bytes free") {
		t.Errorf("message %q does not say what is free", err)
	}
}
