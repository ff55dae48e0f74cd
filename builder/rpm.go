package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/builddeps"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/pkgmgr"
	"github.com/thinroot/thinroot/rpmroot"
	"github.com/thinroot/thinroot/sandbox"
)

// RPMRequest is the RPM part of a build request: an SRPM to rebuild, or a
// spec and its sources to build an SRPM from and then rebuild (mock
// without a mode). The build installs the BuildRequires with the
// config's package manager and runs rpmbuild as the build user.
type RPMRequest struct {
	SRPM    string   `json:"srpm,omitempty"`    // host path of a source RPM
	Spec    string   `json:"spec,omitempty"`    // host path of a spec file
	Sources string   `json:"sources,omitempty"` // host directory (or file) of the spec's sources
	Target  string   `json:"target,omitempty"`  // rpmbuild --target (default: rpmbuild_arch, target_arch)
	Defines []string `json:"defines,omitempty"` // "NAME VALUE", as mock -D
	With    []string `json:"with,omitempty"`    // mock --with
	Without []string `json:"without,omitempty"` // mock --without
	// SRPMOnly stops a spec build after the SRPM (mock --buildsrpm).
	SRPMOnly bool `json:"srpm_only,omitempty"`
}

// IsRPM tells whether a request is an RPM build.
func (r RPMRequest) IsRPM() bool { return r.SRPM != "" || r.Spec != "" }

// RPMRecord is what an RPM build records besides a build's usual fields.
type RPMRecord struct {
	Package string `json:"package,omitempty"` // NAME-VERSION-RELEASE of the source package
	// BuildRequires is the last set of BuildRequires requested.
	BuildRequires []string `json:"build_requires,omitempty"`
	// Rounds are the rounds of BuildRequires: each cloned a builddep
	// snapshot (hit) or ran the package manager and took one (miss).
	Rounds []BuilddepRound `json:"builddep_rounds,omitempty"`
	// BuilddepHit is set when no round ran the package manager: every set
	// of BuildRequires came from a builddep snapshot (or there was none).
	BuilddepHit bool `json:"builddep_hit"`
	// PackageManagerRuns counts this build's runs of the package manager.
	PackageManagerRuns int `json:"package_manager_runs"`
	// RepoDigest is the repositories' metadata digest the keys used.
	RepoDigest string   `json:"repo_digest,omitempty"`
	Results    []string `json:"results,omitempty"` // files put in the result directory
}

// BuilddepRound is one round of BuildRequires.
type BuilddepRound struct {
	Phase    string `json:"phase"` // static or dynamic
	Requires int    `json:"requires"`
	Snapshot string `json:"snapshot,omitempty"`
	Hit      bool   `json:"hit"`
	// Waited says the build waited for another build installing the same
	// key, then cloned its snapshot.
	Waited bool `json:"waited,omitempty"`
}

// Exit statuses of an RPM build, mock's (farm-contract §3); rpmbuild's
// own status when it fails.
const (
	ExitBuildError = 10 // rpmbuild -br failed
	ExitTimeout    = 11 // over the timeout
	ExitPkgError   = 40 // the SRPM does not install, no spec, not one SRPM, no results
)

// rpmWorkDir holds an RPM build's files outside the workdir (the copy of
// the SRPM, the scratch home): the build removes it, and so does the
// daemon that finds the build interrupted.
func (b *Builder) rpmWorkDir(id string) string { return filepath.Join(b.buildDir(id), "rpm") }

// rpmTimeout is an RPM build's timeout: the request's, else the config's
// rpmbuild_timeout.
func rpmTimeout(req Request, info ConfigInfo) time.Duration {
	if req.Timeout == 0 && req.IsRPM() && info.RPM != nil {
		return info.RPM.Timeout
	}
	return time.Duration(req.Timeout)
}

// snapshotFor is the snapshot a build's workdir is cloned from: the one
// asked for, else the config's current one (the record of its
// unique-ext, which thinroot snapshot and rollback-to set), as mock
// builds from its current snapshot.
func (b *Builder) snapshotFor(req Request) string {
	if req.Snapshot != "" {
		return req.Snapshot
	}
	m := b.opts.Manager
	cfg, err := m.Config(req.Config)
	if err != nil {
		return ""
	}
	snap, err := m.Current(req.Config, cfg.UniqueExt)
	if err != nil {
		return ""
	}
	return snap
}

// bootstrapFailed ends a build whose config's bootstrap failed in the
// package manager as mock ends it: failed, exit status 30, the reason
// (the package or repository) in the record. It tells whether it did.
func (b *Builder) bootstrapFailed(ctx context.Context, e *entry, err error) bool {
	var be *rpmroot.BootstrapError
	if ctx.Err() != nil || !errors.As(err, &be) || !be.PackageManager {
		return false
	}
	code := be.ExitCode()
	fmt.Fprintf(e.log, "[thinroot] build %s: bootstrap failed: %s\n", StateFailed, be.Reason)
	b.setState(e, StateFailed, func(r *Build) { r.Error = "init: " + err.Error(); r.ExitCode = &code })
	return true
}

// rpmFailure is a failure with mock's exit status and a message for the
// record.
type rpmFailure struct {
	code int
	msg  string
}

func (f *rpmFailure) Error() string { return f.msg }

// rpmJob is one RPM build in progress.
type rpmJob struct {
	b    *Builder
	e    *entry
	ctx  context.Context
	rc   *rpmroot.Config
	logs *rpmroot.Logs
	root string // the config's root name
	ext  string
	// dir is the workdir's root; home the build user's home there.
	dir, home string
	// scratch is a host directory bound over the home while the
	// BuildRequires are worked out, so the workdir's volume holds nothing
	// of the package when it is snapshotted.
	scratch  string
	uid, gid int
	owner    int
	target   string
	macros   [][2]string
	network  bool
	detach   []string
	cur      string // the snapshot the workdir was cloned from
	rec      RPMRecord
	cache    *builddeps.Cache
	cfgHash  string
	digest   string
	state    string // the base of the next round's key
	lastReqs []string
	// lastRec is the record of the state the workdir is in, made or
	// found in phase lastPhase.
	lastRec   *builddeps.Record
	lastPhase string
}

// executeRPM runs an RPM build in the workdir of ext and returns mock's
// exit status (0, rpmbuild's, 10, 11, 30, 40), or an error when thinroot
// could not run it.
func (b *Builder) executeRPM(ctx context.Context, e *entry, info ConfigInfo, ext, resultDir string) (int, error) {
	req := e.b.Request
	m := b.opts.Manager
	if info.RPM == nil {
		return -1, fmt.Errorf("config %s cannot build RPMs: no package manager thinroot drives", req.Config)
	}
	rc := info.RPM
	cfg, err := m.Config(req.Config)
	if err != nil {
		return -1, err
	}
	timeout := rpmTimeout(req, info)
	rctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	logs, err := rpmroot.OpenLogs(resultDir, e.b.BuildUID, e.b.BuildGID, rc.Version, e.log)
	if err != nil {
		return -1, err
	}
	defer logs.Close()
	macros, err := rpmroot.BuildMacros(req.Defines, req.With, req.Without)
	if err != nil {
		return -1, err
	}
	j := &rpmJob{b: b, e: e, ctx: rctx, rc: rc, logs: logs, root: req.Config, ext: ext,
		dir: cfg.ChrootDir(ext), uid: e.b.BuildUID, gid: e.b.BuildGID, owner: e.b.Owner,
		target: req.Target, macros: macros, network: req.Network || info.Network,
		detach: []string{cfg.Basedir, b.opts.StateDir}, cur: e.b.Snapshot,
		scratch: filepath.Join(b.rpmWorkDir(e.b.ID), "builddir")}
	if j.target == "" {
		j.target = rc.RpmbuildArch
	}
	j.home = filepath.Join(j.dir, rc.Home)
	j.cache = &builddeps.Cache{Dir: filepath.Join(b.opts.StateDir, "builddeps", req.Config), Root: req.Config,
		Policy: builddeps.Policy{Max: rc.Builddeps.Max, PoolPercent: rc.Builddeps.PoolPercent},
		Vols:   m, Log: func(f string, a ...any) { logs.Info(f, a...) }}
	if req.InPlace {
		// A root in use since its clone is no longer what a builddep
		// snapshot's key says: install into it, snapshot nothing.
		j.cache.Policy.Max = 0
	}
	defer os.RemoveAll(b.rpmWorkDir(e.b.ID))
	code, err := j.run(resultDir)
	j.rec.BuilddepHit = j.rec.PackageManagerRuns == 0
	rec := j.rec
	b.update(e, func(r *Build) { r.RPM = &rec })
	switch {
	case rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		logs.Error("timed out after %v", timeout)
		return ExitTimeout, context.DeadlineExceeded
	case ctx.Err() != nil:
		return -1, context.Cause(ctx)
	}
	var rf *rpmFailure
	var pe *pkgmgr.Error
	switch {
	case errors.As(err, &pe):
		logs.Error("%v", pe)
		b.update(e, func(r *Build) { r.Error = pe.Error() })
		return pe.ExitCode(), nil
	case errors.As(err, &rf):
		logs.Error("%s", rf.msg)
		b.update(e, func(r *Build) { r.Error = rf.msg })
		return rf.code, nil
	case err != nil:
		logs.Error("%v", err)
		return -1, err
	}
	return code, nil
}

// run is the build: mock's buildsrpm for a spec, then the build phase
// of the SRPM. It returns rpmbuild's status when rpmbuild fails.
func (j *rpmJob) run(resultDir string) (int, error) {
	req := j.e.b.Request
	logs := j.logs
	if err := rpmroot.WriteHWInfo(j.ctx, resultDir, j.dir, j.rc.PM.CacheDir, j.uid, j.gid); err != nil {
		logs.Info("hw_info: %v", err)
	}
	logs.Start("chroot init")
	logs.Info("workdir %s.%s cloned from snapshot %s at %s", j.root, j.ext, j.cur, j.dir)
	logs.Finish("chroot init")
	srpm := ""
	if req.Spec != "" {
		s, code, err := j.buildSRPM(resultDir)
		if err != nil || code != 0 || req.SRPMOnly {
			if err == nil && code == 0 {
				j.rec.Results = []string{filepath.Base(s)}
			}
			return code, err
		}
		srpm = s
	} else {
		work := j.b.rpmWorkDir(j.e.b.ID)
		if err := os.MkdirAll(work, 0o755); err != nil {
			return -1, err
		}
		srpm = filepath.Join(work, filepath.Base(req.SRPM))
		if err := copyFileAs(req.SRPM, srpm, j.owner, 0, 0); err != nil {
			return -1, &rpmFailure{ExitPkgError, fmt.Sprintf("SRPM: %v", err)}
		}
	}
	return j.buildPhase(srpm, resultDir)
}

// buildSRPM is mock's buildsrpm: the spec and sources in the build
// user's home, rpmbuild -bs, the SRPM copied to the result directory.
func (j *rpmJob) buildSRPM(resultDir string) (string, int, error) {
	req := j.e.b.Request
	logs := j.logs
	logs.Start("buildsrpm")
	defer logs.Finish("buildsrpm")
	if err := j.freshScratch(); err != nil {
		return "", -1, err
	}
	spec := filepath.Join(j.scratch, "build", "SPECS", filepath.Base(req.Spec))
	if err := copyFileAs(req.Spec, spec, j.owner, j.uid, j.gid); err != nil {
		return "", -1, &rpmFailure{ExitPkgError, fmt.Sprintf("spec: %v", err)}
	}
	if req.Sources != "" {
		if err := copyTreeAs(req.Sources, filepath.Join(j.scratch, "build", "SOURCES"), j.owner, j.uid, j.gid); err != nil {
			return "", -1, &rpmFailure{ExitPkgError, fmt.Sprintf("sources: %v", err)}
		}
	}
	logs.Start("rpmbuild -bs")
	code, err := j.rpmbuild(true, false, "-bs", filepath.Join(j.rc.Home, "build", "SPECS", filepath.Base(req.Spec)))
	logs.Finish("rpmbuild -bs")
	if err != nil {
		return "", -1, err
	}
	if code != 0 {
		return "", code, rpmbuildFailed("-bs", filepath.Base(req.Spec), code)
	}
	built, err := j.oneSRPM()
	if err != nil {
		return "", -1, err
	}
	out := filepath.Join(resultDir, filepath.Base(built))
	if err := copyFileAs(built, out, 0, j.uid, j.gid); err != nil {
		return "", -1, err
	}
	logs.Info("Copied %s to the result directory", filepath.Base(built))
	return out, 0, nil
}

// buildPhase is mock's build of an SRPM: its BuildRequires (static, then
// dynamic), the list of installed packages, rpmbuild, the results.
func (j *rpmJob) buildPhase(srpm, resultDir string) (int, error) {
	logs := j.logs
	base := filepath.Base(srpm)
	logs.Start("build phase for " + base)
	defer logs.Finish("build phase for " + base)
	hdr, err := pkgmgr.ReadHeader(j.ctx, srpm)
	if err != nil {
		return -1, &rpmFailure{ExitPkgError, fmt.Sprintf("%s is not a source package: %v", base, err)}
	}
	if !hdr.Source {
		return -1, &rpmFailure{ExitPkgError, fmt.Sprintf("%s is not a source package", base)}
	}
	j.rec.Package = hdr.NVR()
	setup := "build setup for " + base
	logs.Start(setup)
	spec, rebuilt, code, err := j.buildRequires(srpm)
	logs.Finish(setup)
	if err != nil || code != 0 {
		return code, err
	}

	// The BuildRequires are in the workdir: the build itself runs there,
	// in the build user's home on the workdir's volume.
	logs.Start("Outputting list of installed packages")
	list, err := pkgmgr.InstalledPackages(j.ctx, j.dir)
	if err == nil {
		p := filepath.Join(resultDir, "installed_pkgs.log")
		err = os.WriteFile(p, list, 0o644)
		os.Chown(p, j.uid, j.gid)
	}
	logs.Finish("Outputting list of installed packages")
	if err != nil {
		return -1, err
	}
	if changed, err := j.rc.EnsureUser(j.ctx, j.dir, j.uid, j.gid, logs.Root()); err != nil {
		return -1, fmt.Errorf("build user: %w", err)
	} else if changed {
		logs.Info("made the build user %s uid %d gid %d", j.rc.User, j.uid, j.gid)
	}
	if err := j.rc.PrepareHome(j.home, j.uid, j.gid, j.macros, true); err != nil {
		return -1, fmt.Errorf("build directories: %w", err)
	}
	if err := rpmroot.ChownTree(j.home, j.uid, j.gid); err != nil {
		return -1, err
	}
	orig := filepath.Join(j.home, "build", "originals", base)
	if err := copyFileAs(srpm, orig, 0, j.uid, j.gid); err != nil {
		return -1, err
	}
	if code, err := j.inRoot(false, false, logs.Root(), j.rc.RPMCommand, "-Uvh", "--nodeps",
		filepath.Join(j.rc.Home, "build", "originals", base)); err != nil {
		return -1, err
	} else if code != 0 {
		return -1, &rpmFailure{ExitPkgError, "Source RPM is not installable: " + base}
	}
	if err := copyFileAs(rebuilt, filepath.Join(j.home, "build", "SRPMS", filepath.Base(rebuilt)), 0, j.uid, j.gid); err != nil {
		return -1, err
	}
	mode := "-bb"
	if hdr.Dynamic && j.rc.DynamicBuildRequires {
		// Rewrite the SRPM with its dynamic BuildRequires, as mock does;
		// %prep runs again here (the rounds ran it in the scratch home).
		mode = "-ba"
	}
	state := "rpmbuild " + base
	logs.Start(state)
	code, err = j.rpmbuild(false, j.network, mode, spec)
	logs.Finish(state)
	if err != nil {
		return -1, err
	}
	if code != 0 {
		return code, rpmbuildFailed(mode, base, code)
	}
	return 0, j.collect(resultDir)
}

// collect copies the built packages and the rebuilt SRPM flat into the
// result directory, as mock's copy_build_results.
func (j *rpmJob) collect(resultDir string) error {
	var found []string
	filepath.WalkDir(filepath.Join(j.home, "build", "RPMS"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".rpm") {
			found = append(found, p)
		}
		return nil
	})
	srpms, _ := filepath.Glob(filepath.Join(j.home, "build", "SRPMS", "*.rpm"))
	for _, s := range srpms {
		if !strings.HasSuffix(s, ".nosrc.rpm") {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return &rpmFailure{ExitPkgError, "No build results found"}
	}
	j.logs.Info("Copying packages to result dir")
	for _, f := range found {
		if err := copyFileAs(f, filepath.Join(resultDir, filepath.Base(f)), 0, j.uid, j.gid); err != nil {
			return err
		}
		j.rec.Results = append(j.rec.Results, filepath.Base(f))
	}
	sort.Strings(j.rec.Results)
	return nil
}

// buildRequires gets the SRPM's BuildRequires into the workdir, round
// by round as mock: rebuild the SRPM (rpmbuild -bs) and install what it
// asks for until it asks for nothing new; then, for a package with
// %generate_buildrequires, rpmbuild -br and install until the same. Each
// round's set is installed by the package manager and snapshotted, or
// cloned from the snapshot an earlier build made for the same key. It
// returns the spec's path inside the root and the rebuilt SRPM (host).
// It is long because the rounds share the job's state and read best in
// the order mock runs them.
func (j *rpmJob) buildRequires(srpm string) (spec, rebuilt string, code int, err error) {
	logs := j.logs
	if err := j.freshScratch(); err != nil {
		return "", "", -1, err
	}
	base := filepath.Base(srpm)
	if err := copyFileAs(srpm, filepath.Join(j.scratch, "build", "originals", base), 0, j.uid, j.gid); err != nil {
		return "", "", -1, err
	}
	if code, err := j.inRoot(true, false, logs.Root(), j.rc.RPMCommand, "-Uvh", "--nodeps",
		filepath.Join(j.rc.Home, "build", "originals", base)); err != nil {
		return "", "", -1, err
	} else if code != 0 {
		return "", "", -1, &rpmFailure{ExitPkgError, "Source RPM is not installable: " + base}
	}
	files, err := pkgmgr.ListFiles(j.ctx, srpm)
	if err != nil {
		return "", "", -1, &rpmFailure{ExitPkgError, err.Error()}
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".spec") {
			spec = filepath.Join(j.rc.Home, "build", "SPECS", f)
			break
		}
	}
	if spec == "" {
		return "", "", -1, &rpmFailure{ExitPkgError, "No specfile found in srpm: " + base}
	}
	if err := j.startRounds(); err != nil {
		return "", "", -1, err
	}
	// Static BuildRequires: the SRPM rebuilt in this root says what it
	// needs here (conditionals on the root's macros included).
	dynamic := false
	for i := 0; i < max(j.rc.StaticLoops, 1); i++ {
		code, err := j.rpmbuild(true, false, "-bs", spec)
		if err != nil {
			return "", "", -1, err
		}
		if code != 0 {
			return "", "", code, rpmbuildFailed("-bs", filepath.Base(spec), code)
		}
		if rebuilt, err = j.oneSRPM(); err != nil {
			return "", "", -1, err
		}
		h, err := pkgmgr.ReadHeader(j.ctx, rebuilt)
		if err != nil {
			return "", "", -1, &rpmFailure{ExitPkgError, err.Error()}
		}
		dynamic = h.Dynamic
		done, err := j.round("static", h.Requires, rebuilt, i == 0)
		if err != nil || done {
			if err != nil {
				return "", "", -1, err
			}
			break
		}
	}
	if !dynamic || !j.rc.DynamicBuildRequires {
		return spec, rebuilt, 0, nil
	}
	// Dynamic BuildRequires: rpmbuild -br writes them into a
	// buildreqs.nosrc.rpm (exit status 11 while some are missing).
	mode := []string{"-br"}
	for i := 0; i < max(j.rc.DynamicMaxLoops, 1); i++ {
		code, err := j.rpmbuild(true, false, mode[0], spec, mode[1:]...)
		if err != nil {
			return "", "", -1, err
		}
		if code != 0 && code != 11 {
			return "", "", -1, &rpmFailure{ExitBuildError, fmt.Sprintf("rpmbuild -br failed with exit status %d (build.log)", code)}
		}
		logs.BuildLine("Dynamic buildrequires detected")
		logs.BuildLine("Going to install missing buildrequires. See root.log for details.")
		nosrcs, _ := filepath.Glob(filepath.Join(j.scratch, "build", "SRPMS", "*.buildreqs.nosrc.rpm"))
		if len(nosrcs) != 1 {
			return "", "", -1, &rpmFailure{ExitBuildError, fmt.Sprintf("rpmbuild -br left %d buildreqs.nosrc.rpm", len(nosrcs))}
		}
		h, err := pkgmgr.ReadHeader(j.ctx, nosrcs[0])
		if err != nil {
			return "", "", -1, &rpmFailure{ExitBuildError, err.Error()}
		}
		done, err := j.round("dynamic", h.Requires, nosrcs[0], false)
		os.Remove(nosrcs[0])
		if err != nil {
			return "", "", -1, err
		}
		if done {
			break
		}
		mode = []string{"-br", "--noprep"}
	}
	return spec, rebuilt, 0, nil
}

// startRounds reads the repositories' metadata digest and identifies the
// workdir's snapshot as the first round's base; stale builddep
// snapshots go.
func (j *rpmJob) startRounds() error {
	j.lastReqs, j.lastRec, j.lastPhase = nil, nil, ""
	pmID := *j.rc.PM
	pmID.CacheDir = ""
	j.cfgHash = builddeps.ConfigHash(j.root, pmID)
	if !j.cache.Enabled() {
		return nil
	}
	_, cs := j.b.opts.Manager.State().Config(j.root)
	if cs == nil || cs.Snapshot(j.cur) == nil {
		return fmt.Errorf("snapshot %s of %s is gone", j.cur, j.root)
	}
	j.state = builddeps.BaseSnapshot(j.cur, cs.Snapshot(j.cur).Created)
	sums, err := j.rc.PM.RepoChecksums(j.ctx, j.dir, j.pmOptions())
	if err != nil {
		return err
	}
	j.digest = sums.Digest
	j.rec.RepoDigest = sums.Digest
	j.cache.Forget()
	j.cache.Evict(j.ctx, j.digest, "")
	return nil
}

// round gets one set of requested BuildRequires into the workdir and
// tells whether the rounds are done: the set asks for nothing the round
// before did not install, or the snapshot cloned says the same.
// It is long because a round's three outcomes (a snapshot hit, an install,
// nothing new) share its key and log lines.
func (j *rpmJob) round(phase string, requires []string, file string, first bool) (bool, error) {
	logs := j.logs
	reqs := builddeps.SortedSet(requires)
	j.rec.BuildRequires = reqs
	if !first && slices.Equal(reqs, j.lastReqs) {
		// The state asks for nothing more in this phase: say so on its
		// record, so a build cloning it skips this request.
		if j.lastRec != nil && j.lastPhase == phase {
			j.cache.SetConverged(j.lastRec)
		}
		return true, nil
	}
	if len(reqs) == 0 {
		logs.Info("No %s BuildRequires to install", phase)
		j.lastReqs = reqs
		return true, nil
	}
	r := BuilddepRound{Phase: phase, Requires: len(reqs)}
	defer func() { j.rec.Rounds = append(j.rec.Rounds, r) }()
	if !j.cache.Enabled() {
		logs.Info("Installing %d %s BuildRequires (builddep snapshots are off for %s)", len(reqs), phase, j.root)
		if err := j.builddep(file); err != nil {
			return false, err
		}
		j.lastReqs = reqs
		return false, nil
	}
	key := builddeps.Key(builddeps.KeyInput{Config: j.cfgHash, Base: j.state, Repos: j.digest, Requires: reqs})
	snap := builddeps.SnapshotName(key)
	r.Snapshot = snap
	wait := func() {
		r.Waited = true
		logs.Info("Waiting for another build installing the same BuildRequires (builddep snapshot %s)", snap)
	}
	hit := func(br *builddeps.Record) (bool, error) {
		if err := j.switchTo(snap); err != nil {
			return false, err
		}
		j.cache.Touch(br)
		r.Hit = true
		logs.Info("builddep snapshot %s: hit: cloned it with %d %s BuildRequires installed; the package manager does not run", snap, len(reqs), phase)
		j.state, j.lastReqs, j.lastRec, j.lastPhase = builddeps.BaseKey(key), reqs, br, phase
		return br.Converged, nil
	}
	// Clone when it is there (a shared hold keeps eviction off it).
	unlock, err := j.cache.Lock(j.ctx, key, false, wait)
	if err != nil {
		return false, err
	}
	if br, ok := j.cache.Lookup(key); ok {
		done, err := hit(br)
		unlock()
		return done, err
	}
	unlock()
	// Install it, unless another build does it first.
	unlock, err = j.cache.Lock(j.ctx, key, true, wait)
	if err != nil {
		return false, err
	}
	defer unlock()
	if br, ok := j.cache.Lookup(key); ok {
		return hit(br)
	}
	logs.Info("builddep snapshot %s: miss: installing %d %s BuildRequires with %s", snap, len(reqs), phase, j.rc.PM.Kind)
	br, err := j.cache.Begin(key, j.state, j.digest, reqs, j.e.b.ID)
	if err != nil {
		return false, err
	}
	if err := j.builddep(file); err != nil {
		j.cache.Abort(br)
		return false, err
	}
	err = j.b.opts.Manager.Snapshot(context.WithoutCancel(j.ctx), j.root, j.ext, snap)
	if err != nil && !errors.Is(err, lvm.ErrExists) {
		j.cache.Abort(br)
		return false, fmt.Errorf("builddep snapshot %s: %w", snap, err)
	}
	if err := j.cache.Commit(br); err != nil {
		return false, err
	}
	j.cur = snap
	logs.Info("builddep snapshot %s taken", snap)
	j.state, j.lastReqs, j.lastRec, j.lastPhase = builddeps.BaseKey(key), reqs, br, phase
	if removed := j.cache.Evict(j.ctx, j.digest, key); len(removed) > 0 {
		logs.Info("removed %d builddep snapshots of %s", len(removed), j.root)
	}
	return false, nil
}

// builddep runs the package manager's builddep of a (no)source package on
// the workdir.
func (j *rpmJob) builddep(file string) error {
	j.rec.PackageManagerRuns++
	j.logs.Info("Going to install missing buildrequires")
	return j.rc.PM.Run(j.ctx, j.dir, j.pmOptions(), "builddep", file)
}

func (j *rpmJob) pmOptions() pkgmgr.RunOptions {
	return pkgmgr.RunOptions{Out: j.logs.Root(), DetachUnder: j.detach,
		Waiting: func(l string) {
			j.logs.Info("Waiting for the package cache lock %s (another build runs the package manager)", l)
		}}
}

// switchTo replaces the workdir's volume by a clone of snap, under the
// same unique-ext (so at the same path), as a fresh mock root would be.
func (j *rpmJob) switchTo(snap string) error {
	m := j.b.opts.Manager
	who := "build " + j.e.b.ID
	m.Unhold(j.root, j.ext)
	defer m.Hold(j.root, j.ext, who)
	if err := RemoveWorkdirRetry(context.WithoutCancel(j.ctx), m, j.root, j.ext); err != nil {
		return fmt.Errorf("switch to builddep snapshot %s: %w", snap, err)
	}
	if _, err := m.CreateWorkdir(context.WithoutCancel(j.ctx), j.root, snap, j.ext); err != nil {
		// Leave a workdir behind for the build's cleanup, as it was.
		if _, rerr := m.CreateWorkdir(context.WithoutCancel(j.ctx), j.root, j.cur, j.ext); rerr != nil {
			j.logs.Error("could not make the workdir again from %s: %v", j.cur, rerr)
		}
		return fmt.Errorf("clone builddep snapshot %s: %w", snap, err)
	}
	j.cur = snap
	return nil
}

// freshScratch makes an empty home for the rounds.
func (j *rpmJob) freshScratch() error {
	if err := os.RemoveAll(j.scratch); err != nil {
		return err
	}
	if err := os.MkdirAll(j.scratch, 0o755); err != nil {
		return err
	}
	return j.rc.PrepareHome(j.scratch, j.uid, j.gid, j.macros, false)
}

// oneSRPM finds the single SRPM rpmbuild -bs made in the scratch home.
func (j *rpmJob) oneSRPM() (string, error) {
	ms, _ := filepath.Glob(filepath.Join(j.scratch, "build", "SRPMS", "*.src.rpm"))
	if len(ms) != 1 {
		return "", &rpmFailure{ExitPkgError, fmt.Sprintf("Expected to find single rebuilt srpm, found %d", len(ms))}
	}
	return ms[0], nil
}

// rpmbuild runs rpmbuild as mock does (bash --login -c, --target,
// --nodeps) with its output in build.log.
func (j *rpmJob) rpmbuild(scratch, network bool, mode, spec string, more ...string) (int, error) {
	words := append(append([]string{j.rc.RPMBuildCommand, mode}, more...), "--target", j.target, "--nodeps", spec)
	for i, w := range words {
		words[i] = shWord(w)
	}
	return j.inRoot(scratch, network, j.logs.Build(), "bash", "--login", "-c", strings.Join(words, " "))
}

// inRoot runs argv in the workdir as the build user in the sandbox,
// with its home bound from the scratch directory when scratch is set.
func (j *rpmJob) inRoot(scratch, network bool, out io.Writer, argv ...string) (int, error) {
	spec := sandbox.Spec{Root: j.dir, Argv: argv, Env: j.rc.Environment, Dir: j.rc.Home, UID: j.uid, GID: j.gid,
		Hostname: j.rc.Hostname, Network: network, HostResolver: network}
	if spec.Hostname == "" {
		spec.Hostname = "thinroot-" + j.ext
	}
	if scratch {
		spec.Binds = []sandbox.Bind{{Source: j.scratch, Target: j.rc.Home}}
	}
	fmt.Fprintf(out, "Executing command: %s\n", pkgmgr.PyRepr(argv))
	cmd, err := sandbox.Command(j.ctx, spec)
	if err != nil {
		return -1, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	if j.ctx.Err() != nil {
		return -1, context.Cause(j.ctx)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		return -1, err
	}
	fmt.Fprintf(out, "Child return code was: %d\n", code)
	return code, nil
}

// rpmbuildFailed is rpmbuild's failure: mock exits with its status.
func rpmbuildFailed(mode, what string, code int) error {
	return &rpmFailure{code, fmt.Sprintf("rpmbuild %s of %s failed with exit status %d (see build.log)", mode, what, code)}
}

// shWord quotes a word for sh.
func shWord(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=@:+,%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
