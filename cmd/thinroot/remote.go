package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
)

// The mock group without root: a caller other than root runs the volume
// commands through the daemon, which runs them as root for callers its
// API lets: members of the tree's group may change, everyone may read.
// Without a daemon such a caller gets one line saying what is needed.

// volumeVerbs are the commands the daemon runs for callers; true marks
// those that only read.
var volumeVerbs = map[string]bool{
	"init": false, "snapshot": false, "rollback-to": false, "remove-snapshot": false, "scrub": false,
	"workdir create": false, "workdir remove": false,
	"list-snapshots": true, "workdir list": true, "pool list": true, "pool stats": true,
}

// remoteFlags are the flags a caller may pass on to the daemon; every
// other flag (a bootstrap argv, ad hoc configs, other directories) would
// have root run what the caller chose.
var remoteFlags = map[string]bool{"uniqueext": true, "snapshot": true, "json": true}

// localOnly are the flags that only steer this process and stay here.
var localOnly = map[string]bool{"log-level": true, "log-format": true, "socket": true, "config": true}

func init() {
	for _, c := range []*command{cmdInit, cmdSnapshot, cmdRollbackTo, cmdListSnapshots, cmdRemoveSnapshot, cmdScrub,
		cmdWorkdirCreate, cmdWorkdirRemove, cmdWorkdirList, cmdPoolList, cmdPoolStats} {
		c, local := c, c.run
		c.run = func(ctx context.Context, a *app, args []string) error {
			if os.Geteuid() == 0 {
				return local(ctx, a, args)
			}
			return runRemote(ctx, a, c, args)
		}
	}
}

// readOnlyCommand tells whether the command being run only reads: it
// then makes no state directory.
func (a *app) readOnlyCommand() bool {
	return a.cmd != nil && volumeVerbs[a.cmd.name]
}

// runRemote asks the daemon to run the command.
func runRemote(ctx context.Context, a *app, c *command, args []string) error {
	argv := append(strings.Fields(c.name), args...)
	var refused []string
	a.flags.Visit(func(f *pflag.Flag) {
		switch {
		case remoteFlags[f.Name]:
			if f.Value.Type() == "bool" {
				argv = append(argv, "--"+f.Name)
			} else {
				argv = append(argv, "--"+f.Name+"="+f.Value.String())
			}
		case localOnly[f.Name]:
		default:
			refused = append(refused, "--"+f.Name)
		}
	})
	if len(a.tail) > 0 {
		refused = append(refused, "a bootstrap argv")
	}
	if len(refused) > 0 {
		return &cliError{code: exitPermission, msg: fmt.Sprintf("%s needs root: the daemon runs this command for others only with the config's own settings", andList(refused))}
	}
	sock := envOr("THINROOT_SOCKET", DefaultSocket)
	if f := a.flags.Lookup("socket"); f != nil {
		sock = f.Value.String()
	}
	res, err := builder.NewClient(sock).Volume(ctx, argv)
	var he *builder.HTTPError
	switch {
	case errors.As(err, &he):
		return err
	case errors.Is(err, syscall.EACCES):
		return daemonErr(sock, err)
	case err != nil:
		why := err.Error()
		var op *net.OpError
		if errors.As(err, &op) {
			why = op.Err.Error()
		}
		return &cliError{code: exitPermission, err: err,
			msg: fmt.Sprintf("needs root, or a running thinroot daemon to ask (none answers at %s: %s)", sock, why)}
	}
	io.WriteString(a.stdout, res.Stdout)
	io.WriteString(a.stderr, res.Stderr)
	if res.ExitCode != 0 {
		return silentExit{res.ExitCode}
	}
	return nil
}

// volumeRunner runs a caller's volume command as this daemon's CLI, with
// the daemon's directories, after checking it: a known command, only the
// flags remoteFlags allows, and the caller in group gid for one that
// changes anything.
//
// Every argument is a plain name (no "/", no leading "."), and a config
// named must be one the daemon serves (served): mock's -r takes a path to
// a .cfg file too, and root must never load a caller's file, whose
// bootstrap it would run.
func (a *app) volumeRunner(gid int, served func(name string) bool) func(ctx context.Context, cr builder.Cred, argv []string) (builder.VolumeResult, error) {
	return func(ctx context.Context, cr builder.Cred, argv []string) (builder.VolumeResult, error) {
		verb, rest := "", argv
		switch {
		case len(argv) >= 2 && (argv[0] == "workdir" || argv[0] == "pool"):
			verb, rest = argv[0]+" "+argv[1], argv[2:]
		case len(argv) >= 1:
			verb, rest = argv[0], argv[1:]
		}
		readOnly, known := volumeVerbs[verb]
		if !known {
			return builder.VolumeResult{}, fmt.Errorf("%w: %q is not a volume command the daemon runs (%s)", builder.ErrBadRequest, verb, "init, snapshot, rollback-to, list-snapshots, remove-snapshot, scrub, workdir create|remove|list, pool list|stats")
		}
		config := ""
		for _, arg := range rest {
			name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			switch {
			case strings.HasPrefix(arg, "-"):
				if !strings.HasPrefix(arg, "--") || !remoteFlags[name] {
					return builder.VolumeResult{}, fmt.Errorf("%w: flag %s is not one the daemon passes on (--uniqueext, --snapshot, --json)", builder.ErrBadRequest, arg)
				}
				arg = value
			case config == "":
				config = arg
			}
			if strings.Contains(arg, "/") || strings.HasPrefix(arg, ".") {
				return builder.VolumeResult{}, fmt.Errorf("%w: %q is not a plain name: the daemon runs volume commands only on the configs it serves, by name", builder.ErrBadRequest, arg)
			}
		}
		// The first positional argument of every command but the pool
		// ones is the config.
		if config != "" && !strings.HasPrefix(verb, "pool ") && !served(config) {
			return builder.VolumeResult{}, fmt.Errorf("%w: %q is not a config this daemon serves", builder.ErrBadRequest, config)
		}
		if !readOnly && !cr.MayChange(gid) {
			return builder.VolumeResult{}, fmt.Errorf("%w: uid %d may not run thinroot %s: only root and members of group %d may change volumes (anyone may list)", builder.ErrForbidden, cr.UID, verb, gid)
		}
		self, err := os.Executable()
		if err != nil {
			return builder.VolumeResult{}, err
		}
		full := []string{"--config-dir", a.g.configDir, "--state-dir", a.g.stateDir, "--cache-dir", a.g.cacheDir}
		if a.g.basedir != "" {
			full = append(full, "--basedir", a.g.basedir)
		}
		full = append(append(full, strings.Fields(verb)...), rest...)
		// The caller going away does not stop a change half done.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Hour)
		defer cancel()
		cmd := exec.CommandContext(rctx, self, full...)
		cmd.Dir = "/"
		cmd.Env = append(os.Environ(), "THINROOT_LOG_LEVEL=", "COLUMNS=100")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		res := builder.VolumeResult{Stdout: stdout.String(), Stderr: stderr.String()}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			res.ExitCode = ee.ExitCode()
		case err != nil:
			return res, fmt.Errorf("run thinroot %s: %w", verb, err)
		}
		a.logger().Info("volume command for a caller", "uid", cr.UID, "argv", argv, "exit", res.ExitCode)
		return res, nil
	}
}
