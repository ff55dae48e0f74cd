package rpmroot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/thinroot/thinroot/pkgmgr"
)

// BootstrapMarker is the first argument that turns a thinroot process
// into the bootstrap of a dnf/yum config. BootstrapMain must run early in
// main().
const BootstrapMarker = "__thinroot-rpm-bootstrap"

// ErrorPrefix starts the line a failed bootstrap prints last; a Catcher
// on its output picks the reason up.
const ErrorPrefix = "thinroot: bootstrap failed: "

// pmErrorPrefix marks a package-manager failure (mock's exit status 30).
const pmErrorPrefix = "thinroot: bootstrap failed in the package manager: "

// bootstrapSpec is what the hidden subcommand reads.
type bootstrapSpec struct {
	Config *Config
	// DetachUnder is passed to the package manager's runs (the basedir
	// and the state directory).
	DetachUnder []string
}

// BootstrapArgv writes the bootstrap's spec for c under
// stateDir/bootstrap/<root>.json and returns the argv the Manager runs
// with ROOT set: this binary, the marker and the spec's path.
func BootstrapArgv(c *Config, stateDir string, detachUnder []string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(bootstrapSpec{Config: c, DetachUnder: detachUnder}, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(stateDir, "bootstrap", c.Root+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, data) {
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+c.Root+".json.tmp-")
		if err != nil {
			return nil, err
		}
		_, werr := tmp.Write(data)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), path)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return nil, fmt.Errorf("write the bootstrap of %s: %w", c.Root, werr)
		}
	}
	return []string{exe, BootstrapMarker, path}, nil
}

// BootstrapMain runs the bootstrap when this process was started as one
// (and then never returns); otherwise it does nothing.
func BootstrapMain() {
	if len(os.Args) < 3 || os.Args[1] != BootstrapMarker {
		return
	}
	os.Exit(bootstrapMain(os.Args[2]))
}

func bootstrapMain(path string) int {
	fail := func(prefix string, err error) int {
		fmt.Fprintln(os.Stderr, prefix+strings.ReplaceAll(err.Error(), "\n", " "))
		var pe *pkgmgr.Error
		if errors.As(err, &pe) {
			return pe.ExitCode()
		}
		return 1
	}
	root := os.Getenv("ROOT")
	if root == "" {
		return fail(ErrorPrefix, errors.New("ROOT is not set"))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(ErrorPrefix, err)
	}
	var spec bootstrapSpec
	if err := json.Unmarshal(data, &spec); err != nil || spec.Config == nil || spec.Config.PM == nil {
		return fail(ErrorPrefix, fmt.Errorf("bad bootstrap spec %s: %v", path, err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	err = Bootstrap(ctx, spec.Config, root, BootstrapOptions{Out: os.Stdout, DetachUnder: spec.DetachUnder})
	if err != nil {
		var pe *pkgmgr.Error
		if errors.As(err, &pe) {
			return fail(pmErrorPrefix, err)
		}
		return fail(ErrorPrefix, err)
	}
	return 0
}

// BootstrapOptions say where a bootstrap's output goes.
type BootstrapOptions struct {
	Out         io.Writer
	DetachUnder []string
}

// Bootstrap fills an empty root as mock's init does without a bootstrap
// chroot: the skeleton, the package manager's configuration and the
// config's files, chroot_setup_cmd (and chroot_additional_packages) with
// the host's package manager, the machine id and time zone, the build
// user and group, the build user's rpmbuild tree and macros, and
// /.initialized. Its logs go to the result directory beside the root
// (<basedir>/<root>[-<ext>]/result: state.log, root.log, hw_info.log), as
// mock's --init writes them, and to o.Out.
func Bootstrap(ctx context.Context, c *Config, root string, o BootstrapOptions) (err error) {
	resultDir := filepath.Join(filepath.Dir(root), "result")
	logs, err := OpenLogs(resultDir, c.UID, c.GID, c.Version, o.Out)
	if err != nil {
		return fmt.Errorf("result directory: %w", err)
	}
	defer logs.Close()
	logs.Start("chroot init")
	defer func() {
		if err != nil {
			logs.Error("%v", err)
		}
		logs.Finish("chroot init")
	}()
	if err := WriteHWInfo(ctx, resultDir, root, c.PM.CacheDir, c.UID, c.GID); err != nil {
		logs.Info("hw_info: %v", err)
	}
	logs.Info("rootdir = %s", root)
	logs.Info("resultdir = %s", resultDir)
	if c.PM.Wanted != "" {
		logs.Info("Using '%s' instead of '%s': the host has no %s", c.PM.Kind, c.PM.Wanted, c.PM.Wanted)
	}
	if err := c.SetupSkeleton(root); err != nil {
		return fmt.Errorf("skeleton: %w", err)
	}
	if err := c.PM.WriteRootConfig(root); err != nil {
		return fmt.Errorf("package manager configuration: %w", err)
	}
	if err := c.WriteFiles(root); err != nil {
		return fmt.Errorf("config_opts['files']: %w", err)
	}
	state := "installing minimal buildroot with " + c.PM.Kind
	logs.Start(state)
	for _, argv := range c.PM.SetupArgv() {
		err := c.PM.Run(ctx, root, pkgmgr.RunOptions{Out: logs.Root(), DetachUnder: o.DetachUnder,
			Waiting: func(l string) { logs.Info("waiting for the package cache lock %s", l) }}, argv...)
		if err != nil {
			logs.Finish(state)
			return err
		}
	}
	logs.Finish(state)
	if err := SetupIdentity(root); err != nil {
		return err
	}
	if _, err := c.EnsureUser(ctx, root, c.UID, c.GID, logs.Root()); err != nil {
		return fmt.Errorf("build user: %w", err)
	}
	home, err := in(root, c.Home)
	if err != nil {
		return err
	}
	if err := c.PrepareHome(home, c.UID, c.GID, nil, false); err != nil {
		return fmt.Errorf("build directories: %w", err)
	}
	return MarkInitialized(root)
}

// Catcher passes a bootstrap's output on and keeps the reason a failed
// bootstrap gives on its last line, so the error that reaches a user
// names the package or repository instead of an exit status only.
type Catcher struct {
	W io.Writer

	mu   sync.Mutex
	buf  []byte
	msg  string
	pm   bool
	seen bool
}

func (c *Catcher) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			break
		}
		line := string(c.buf[:i])
		c.buf = c.buf[i+1:]
		if m, ok := strings.CutPrefix(line, pmErrorPrefix); ok {
			c.msg, c.pm, c.seen = m, true, true
		} else if m, ok := strings.CutPrefix(line, ErrorPrefix); ok {
			c.msg, c.pm, c.seen = m, false, true
		}
	}
	if len(c.buf) > 64<<10 {
		c.buf = c.buf[len(c.buf)-64<<10:]
	}
	c.mu.Unlock()
	if c.W == nil {
		return len(p), nil
	}
	return c.W.Write(p)
}

// Err adds the caught reason to err (the Manager's "bootstrap: exit
// status N"); nil stays nil.
func (c *Catcher) Err(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil || !c.seen {
		return err
	}
	return &BootstrapError{Err: err, Reason: c.msg, PackageManager: c.pm}
}

// BootstrapError is a failed bootstrap with the reason it gave.
type BootstrapError struct {
	Err    error
	Reason string
	// PackageManager says the package manager failed (mock exits 30).
	PackageManager bool
}

func (e *BootstrapError) Error() string { return e.Err.Error() + ": " + e.Reason }
func (e *BootstrapError) Unwrap() error { return e.Err }

// ExitCode is mock's exit status for the failure: 30 for the package
// manager, else 1.
func (e *BootstrapError) ExitCode() int {
	if e.PackageManager {
		return pkgmgr.ExitCode
	}
	return 1
}
