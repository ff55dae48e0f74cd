package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/mockcfg"
	"github.com/thinroot/thinroot/pkgmgr"
	"github.com/thinroot/thinroot/rpmroot"
)

// RPM builds: what a config needs for them, the build command's RPM
// flags, and the bootstrap of a dnf/yum config.

// rpmConfig reads how a config builds RPMs. A config without thinroot's
// bootstrap key gets mock's bootstrap of a dnf/yum config (the hidden
// subcommand rpmroot.BootstrapMain runs). A config that cannot build
// RPMs (no package manager thinroot drives, no dnf.conf) gets nil, unless
// it has no other bootstrap either: then it is an error.
func (a *app) rpmConfig(cfg *mockcfg.Config, st mockcfg.Settings, c *lvm.Config) (*rpmroot.Config, error) {
	rc, err := rpmroot.FromMock(cfg, st, a.g.cacheDir)
	if err != nil {
		if len(c.Bootstrap) > 0 || errors.Is(err, pkgmgr.ErrUnsupported) {
			return nil, nil
		}
		return nil, fmt.Errorf("config %s: derive the %s bootstrap: %w", st.Root, st.PackageManager, err)
	}
	if len(c.Bootstrap) == 0 && len(rc.PM.SetupArgv()) > 0 {
		basedir := c.Basedir
		if basedir == "" {
			basedir = lvm.DefaultBasedir
		}
		argv, err := rpmroot.BootstrapArgv(rc, a.g.stateDir, []string{basedir, a.g.stateDir})
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", st.Root, err)
		}
		c.Bootstrap = argv
	}
	return rc, nil
}

// rpmBuildFlags are the build command's flags of an RPM build (mock's).
func rpmBuildFlags(fs *pflag.FlagSet) {
	fs.String("srpm", "", "rebuild this source RPM: its BuildRequires installed, rpmbuild as the build user (mock --rebuild)")
	fs.String("spec", "", "build an SRPM of this spec, then rebuild it (mock --spec)")
	fs.String("sources", "", "the spec's sources: a directory or a file (mock --sources)")
	fs.String("target", "", "rpmbuild --target (default: the config's rpmbuild_arch or target_arch)")
	fs.StringArrayP("define", "D", nil, "define a macro for rpmbuild, \"NAME VALUE\", repeatable (mock -D)")
	fs.StringArray("with", nil, "enable a bcond, repeatable (mock --with)")
	fs.StringArray("without", nil, "disable a bcond, repeatable (mock --without)")
}

// rpmRequest fills the RPM part of a build request from the flags, with
// absolute paths.
func rpmRequest(fl *pflag.FlagSet, req *builder.Request) error {
	abs := func(name string) (string, error) {
		v, _ := fl.GetString(name)
		if v == "" {
			return "", nil
		}
		return filepath.Abs(v)
	}
	var err error
	r := &req.RPMRequest
	if r.SRPM, err = abs("srpm"); err != nil {
		return err
	}
	if r.Spec, err = abs("spec"); err != nil {
		return err
	}
	if r.Sources, err = abs("sources"); err != nil {
		return err
	}
	r.Target, _ = fl.GetString("target")
	r.Defines, _ = fl.GetStringArray("define")
	r.With, _ = fl.GetStringArray("with")
	r.Without, _ = fl.GetStringArray("without")
	if !r.IsRPM() && (r.Sources != "" || r.Target != "" || len(r.Defines)+len(r.With)+len(r.Without) > 0) {
		return usageErr("--sources, --target, -D, --with and --without go with --srpm or --spec")
	}
	if r.IsRPM() && len(req.Command) > 0 {
		return usageErr("an RPM build runs rpmbuild; give --srpm or --spec, or a command, not both")
	}
	return nil
}

// rpmExit is mock's exit status of an RPM build that timed out (11).
func rpmExit(b builder.Build) (int, bool) {
	if b.Request.IsRPM() && b.ExitCode != nil && *b.ExitCode > 0 && *b.ExitCode < 256 {
		return *b.ExitCode, true
	}
	return 0, false
}

// catchBootstrap passes a bootstrap's output to w and keeps the reason a
// failed one gives (see rpmroot.Catcher).
func catchBootstrap(w io.Writer) *rpmroot.Catcher { return &rpmroot.Catcher{W: w} }

// bootstrapExit is the exit status of a failed init: mock's 30 when the
// package manager failed.
func bootstrapExit(err error) (int, bool) {
	var be *rpmroot.BootstrapError
	if errors.As(err, &be) && be.PackageManager {
		return be.ExitCode(), true
	}
	return 0, false
}
