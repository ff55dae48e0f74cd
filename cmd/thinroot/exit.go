package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/mockcfg"
)

// Exit statuses. Where mock has a status of the same meaning
// (mockbuild/exception.py, mock.py), thinroot uses mock's; where it has
// none, sysexits(3)'s. exitCodes documents them (thinroot help
// exit-codes, thinroot(1) EXIT STATUS); TestExitCodesDocumented keeps
// the man page in step.
const (
	exitOK          = 0
	exitError       = 1   // anything else (mock: 1)
	exitUsage       = 2   // bad command line (mock: argparse's 2)
	exitConfig      = 3   // config missing, not loading or invalid (mock: ConfigError)
	exitInterrupted = 7   // SIGINT; a build cancelled or interrupted (mock: KeyboardInterrupt)
	exitTimeout     = 11  // the build ran over its timeout (mock: commandTimeoutExpired)
	exitVolume      = 25  // a volume operation refused or failed (mock: LvmError)
	exitBootstrap   = 30  // the config's bootstrap failed (mock: package manager error)
	exitBusy        = 60  // in use by a build, a process, or mock (mock: BuildRootLocked)
	exitUnavailable = 69  // the daemon cannot be reached (sysexits: EX_UNAVAILABLE)
	exitPermission  = 77  // not allowed to (sysexits: EX_NOPERM)
	exitSignal      = 128 // + the signal's number, when stopped by SIGTERM or SIGHUP (mock: the same)
)

// exitCodes is the table of exit statuses, for help and the man page.
var exitCodes = []struct {
	code    int
	name    string
	meaning string
}{
	{exitOK, "success", "the command did what it was asked"},
	{exitError, "error", "anything not listed below; thinroot build and wait: also a build command that exited 1"},
	{exitUsage, "usage", "bad command line: unknown command or flag, missing or extra argument, a value out of range, flags that conflict with each other or with the config file, an unknown build id"},
	{exitConfig, "config", "the config does not exist, does not load, or has an invalid value"},
	{exitInterrupted, "interrupted", "interrupted by SIGINT (Ctrl-C); thinroot build and wait: the build was cancelled or the daemon stopped while it ran"},
	{exitTimeout, "timeout", "the build ran over its --timeout and was stopped (its record says exit_code 11 too)"},
	{exitVolume, "volume", "a volume operation was refused or failed: no such snapshot, workdir or pool, the name exists, postinit, a snapshot with workdirs, the pool over its refuse threshold, the backend failed"},
	{exitBootstrap, "bootstrap", "the config's bootstrap command (for a dnf config: the package manager) failed"},
	{exitBusy, "busy", "a build or a process uses the workdir, or another program holds the config's lock"},
	{exitUnavailable, "unavailable", "the daemon cannot be reached on its socket"},
	{exitPermission, "permission", "the caller may not do this (not root, not in the tree's group, not the build's owner)"},
	{exitSignal, "signal", "128 plus the signal's number when stopped by SIGTERM (143) or SIGHUP (129)"},
}

// cliError is an error with its exit status and what to do about it.
type cliError struct {
	code int
	msg  string // what went wrong
	hint string // what to do; "" when the message says it
	err  error  // the cause, for errors.Is
}

func (e *cliError) Error() string {
	if e.hint == "" {
		return e.msg
	}
	return e.msg + "; " + e.hint
}

func (e *cliError) Unwrap() error { return e.err }

// failf makes an error with an exit status.
func failf(code int, format string, args ...any) *cliError {
	err := fmt.Errorf(format, args...)
	return &cliError{code: code, msg: err.Error(), err: errors.Unwrap(err)}
}

// usageErr is a bad command line (exit 2).
func usageErr(format string, args ...any) *cliError { return failf(exitUsage, format, args...) }

// configErr is a config problem (exit 3).
func configErr(format string, args ...any) *cliError { return failf(exitConfig, format, args...) }

// withHint adds what to do to err, keeping (or, with code != 0, setting)
// its exit status.
func withHint(err error, code int, hint string) error {
	if err == nil {
		return nil
	}
	c, msg := classify(err)
	var ce *cliError
	if errors.As(err, &ce) {
		msg = ce.msg
	}
	if code == 0 {
		code = c
	}
	return &cliError{code: code, msg: msg, hint: hint, err: err}
}

// silentExit ends with a status, the reason already printed (a build's
// own status).
type silentExit struct{ code int }

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errInterrupted is returned by commands that stop on a signal.
var errInterrupted = errors.New("interrupted")

// classify maps an error to its exit status and its one-line message.
func classify(err error) (int, string) {
	msg := oneLine(err.Error())
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.code, oneLine(ce.Error())
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code, ""
	}
	var he *builder.HTTPError
	if errors.As(err, &he) {
		return httpExit(he)
	}
	var ne *lvm.NameError
	switch {
	case errors.As(err, &ne), errors.Is(err, lvm.ErrInvalidName):
		return exitUsage, msg
	case errors.Is(err, mockcfg.ErrNotFound):
		return exitConfig, msg
	case errors.Is(err, lvm.ErrBusy):
		return exitBusy, msg
	case errors.Is(err, lvm.ErrNotReady):
		return exitVolume, msg
	case errors.Is(err, lvm.ErrNotFound), errors.Is(err, lvm.ErrExists), errors.Is(err, lvm.ErrNotEmpty),
		errors.Is(err, lvm.ErrNotAllowed), errors.Is(err, lvm.ErrPoolFull), errors.Is(err, lvm.ErrUnsupported):
		return exitVolume, msg
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EPERM):
		return exitPermission, msg + "; run it as root (or as a member of the tree's group, through the daemon)"
	case errors.Is(err, context.Canceled), errors.Is(err, errInterrupted):
		return exitInterrupted, msg
	}
	var me *mockcfg.Error
	if errors.As(err, &me) {
		return exitConfig, msg
	}
	return exitError, msg
}

// httpExit maps an error answer of the daemon to an exit status.
func httpExit(he *builder.HTTPError) (int, string) {
	msg := oneLine(strings.TrimPrefix(he.Msg, builder.ErrBadRequest.Error()+": "))
	switch he.Kind {
	case builder.KindUnknownConfig:
		return exitConfig, msg
	case builder.KindUnknownSnapshot:
		return exitVolume, msg
	}
	switch he.Code {
	case 400:
		return exitUsage, msg
	case 403:
		return exitPermission, msg
	case 404:
		return exitUsage, msg + "; thinroot builds lists the builds"
	}
	return exitError, msg
}

// daemonErr says what to do when the daemon cannot be reached.
func daemonErr(sock string, err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	why := "it does not answer"
	switch {
	case errors.Is(err, syscall.ENOENT):
		why = "no socket there"
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "nothing listens on it"
	case errors.Is(err, syscall.EACCES):
		return &cliError{code: exitPermission, err: err,
			msg:  fmt.Sprintf("may not connect to the thinroot daemon at %s (permission denied)", sock),
			hint: "join the tree's group (mock by default) or run as root"}
	}
	return &cliError{code: exitUnavailable, err: err,
		msg:  fmt.Sprintf("cannot reach the thinroot daemon at %s (%s)", sock, why),
		hint: "start it with `thinroot serve` (or `systemctl start thinroot`), or point --socket or THINROOT_SOCKET at its socket"}
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
