// Package lvm2 is the backend.Backend on LVM thin provisioning: one volume
// group, thin pools in it, thin volumes and thin snapshots in the pools. It
// drives the lvm2 command-line tools, reads their reports only as JSON, and
// keeps no state of its own: LVM's metadata (names, origins, tags) is the
// state.
package lvm2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
)

// Runner runs lvm2 commands through the one lvm binary ("lvm lvcreate ...",
// which is what the lvcreate, lvs, ... links run anyway). It is safe for
// concurrent use.
type Runner struct {
	// LVM is the lvm binary; "lvm" (looked up in PATH) when empty. Unit
	// tests point it at a fake script.
	LVM string
	// Log receives one debug record per command; slog.Default when nil.
	Log *slog.Logger

	mu     sync.Mutex
	counts map[string]int64
}

// Count is how many times the command (e.g. "lvcreate", "lvs") has been
// started through this Runner, failed runs included.
func (r *Runner) Count(command string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[command]
}

// Counts is a copy of every command's count.
func (r *Runner) Counts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int64, len(r.counts))
	for k, v := range r.counts {
		m[k] = v
	}
	return m
}

// Total is the number of commands started through this Runner.
func (r *Runner) Total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.counts {
		n += v
	}
	return n
}

func (r *Runner) count(command string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = make(map[string]int64)
	}
	r.counts[command]++
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Observe, if set, is told of every lvm2 command run, its time and its
// error (the daemon's metrics).
var Observe func(command string, took time.Duration, err error)

// readOnly are the commands that change nothing and so may be killed when
// their context ends.
var readOnly = map[string]bool{"lvs": true, "vgs": true, "pvs": true, "version": true}

// Run runs "lvm command args..." and returns its stdout. stderr is kept
// apart: it carries warnings that must never reach a parser, and it goes
// into the error when the command fails.
//
// A command that changes metadata is run detached from ctx's cancellation
// once started: killing lvcreate or lvremove halfway can leave a volume
// half made, or its device active without its metadata committed. A ctx that
// is already done when Run is called still stops it from starting.
func (r *Runner) Run(ctx context.Context, command string, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lvm %s: %w", command, err)
	}
	runCtx := ctx
	if !readOnly[command] {
		runCtx = context.WithoutCancel(ctx)
	}
	bin := r.LVM
	if bin == "" {
		bin = "lvm"
	}
	argv := append([]string{command}, args...)
	cmd := exec.CommandContext(runCtx, bin, argv...)
	// LC_ALL=C keeps messages (matched below) and number formats fixed.
	// LVM_SUPPRESS_FD_WARNINGS: inherited descriptors are not worth a warning.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// No stdin: a prompt (which lvm2 only shows for destructive surprises)
	// reads end of file and is answered "no".
	cmd.Stdin = nil
	// Its own process group: a terminal's ^C reaches thinroot, which
	// decides, and not a half-done lvcreate. Cancel (reports only) kills
	// the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	r.count(command)
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if Observe != nil {
		Observe(command, took, err)
	}
	if err == nil {
		r.log().Debug("lvm", "cmd", command, "args", args, "took", took)
		if s := strings.TrimSpace(stderr.String()); s != "" {
			r.log().Debug("lvm stderr", "cmd", command, "stderr", s)
		}
		return stdout.Bytes(), nil
	}
	e := &Error{
		Args:     append([]string{bin}, argv...),
		ExitCode: -1,
		Stderr:   strings.TrimSpace(stderr.String()),
		Err:      err,
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		e.ExitCode = exitErr.ExitCode()
	}
	if ctx.Err() != nil && readOnly[command] {
		e.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	e.Kind = classify(e.ExitCode, e.Stderr)
	r.log().Debug("lvm failed", "cmd", command, "args", args, "took", took, "exit", e.ExitCode, "stderr", e.Stderr)
	return stdout.Bytes(), e
}

// Error is a failed lvm2 command.
type Error struct {
	Args     []string // the command line, binary first
	ExitCode int      // -1 when it did not run or was killed
	Stderr   string
	// Kind is backend.ErrNotFound, backend.ErrExists, backend.ErrBusy, backend.ErrPoolFull
	// or nil, recognised from the exit code and the message.
	Kind error
	Err  error // what exec said
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(strings.Join(e.Args, " "))
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, ": exit status %d", e.ExitCode)
	} else {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Stderr != "" {
		// Warnings come first and say little; the last lines say why.
		b.WriteString(": ")
		b.WriteString(lastLines(e.Stderr, 3))
	}
	return b.String()
}

// Is lets callers branch with errors.Is(err, backend.ErrNotFound) and friends.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	var keep []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "; ")
}

// lvm2 exits 5 (ECMD_FAILED) for nearly every failure, so the message says
// which one it was. These are lvm2's own messages, stable for years; they
// are matched only with LC_ALL=C.
var kinds = []struct {
	re   *regexp.Regexp
	kind error
}{
	// lvs/vgs/lvcreate of a missing VG; lvs/lvremove of a missing LV.
	{regexp.MustCompile(`Volume group "[^"]*" not found`), backend.ErrNotFound},
	{regexp.MustCompile(`Failed to find logical volume "[^"]*"`), backend.ErrNotFound},
	// lvcreate -s of a missing origin; lvcreate --thinpool of a missing pool.
	{regexp.MustCompile(`Snapshot origin LV \S+ not found in Volume group`), backend.ErrNotFound},
	{regexp.MustCompile(`Pool \S+ not found in Volume group`), backend.ErrNotFound},
	// lvrename of a missing LV.
	{regexp.MustCompile(`Existing logical volume "[^"]*" not found in volume group`), backend.ErrNotFound},
	// lvcreate of a name in use: thin volume and pool forms word it apart.
	{regexp.MustCompile(`Logical [Vv]olume "?\S+?"? already exists in [Vv]olume group`), backend.ErrExists},
	{regexp.MustCompile(`A volume group called \S+ already exists`), backend.ErrExists},
	{regexp.MustCompile(`contains a filesystem in use|Can't remove open logical volume|is used by another device`), backend.ErrBusy},
	// lvcreate in a pool past its threshold or out of data space.
	{regexp.MustCompile(`free space in thin pool \S+ reached threshold|Thin pool \S+ is out of data space`), backend.ErrPoolFull},
}

func classify(exit int, stderr string) error {
	if exit <= 0 {
		return nil
	}
	for _, k := range kinds {
		if k.re.MatchString(stderr) {
			return k.kind
		}
	}
	return nil
}
