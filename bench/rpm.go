package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/rpmdist"
)

// Benchmark 6: an RPM build end to end, on the local test distribution
// (internal/rpmdist), for source packages of three sizes: thinroot through
// its daemon (a cold config, a warm config, a builddep-snapshot hit, 8 at
// once on a cold config) against mock's ways done by hand in the same run
// (untar of a root cache, or an overlayfs upper over the root, then the
// BuildRequires installed by the host's dnf and rpmbuild in the root).
// Every build is split into the phases mock's state.log names.

// The source packages, smallest first.
// The C one compiles 4 generated files (its cc_rounds macro; 16 by
// default), which takes tens of seconds on this shared machine: enough
// for rpmbuild to dominate, few enough to repeat every approach.
var rpmSRPMs = []struct {
	id, name, label string
	defines         []string
}{
	{"tiny", rpmdist.SRPMTiny, "trivial (1 BuildRequires)", nil},
	{"manybr", rpmdist.SRPMManyBR, "many BuildRequires (14)", nil},
	{"cc", rpmdist.SRPMCC, "compiles C (gcc -O2, 4 files of 300 functions)", []string{"cc_rounds 4"}},
}

// rpmDefines are the --define values of a package.
func rpmDefines(srpm string) []string {
	for _, s := range rpmSRPMs {
		if filepath.Base(srpm) != "" && strings.HasPrefix(filepath.Base(srpm), s.name+"-") {
			return s.defines
		}
	}
	return nil
}

// Approaches of benchmark 6, in the order tables and the chart show them.
var rpmApproaches = []struct{ id, label string }{
	{"thinroot-cold", "thinroot: cold config (bootstrap + BuildRequires + rpmbuild)"},
	{"thinroot-warm", "thinroot: warm config, BuildRequires by dnf"},
	{"thinroot-hit", "thinroot: builddep snapshot hit"},
	{"untar", "untar of a root cache + dnf builddep + rpmbuild"},
	{"overlay", "overlayfs upper over the root + dnf builddep + rpmbuild"},
}

// The phases, as mock's state.log delimits them.
var rpmPhases = []struct{ id, label string }{
	{"ready", "root ready"},
	{"buildrequires", "BuildRequires"},
	{"rpmbuild", "rpmbuild"},
	{"results", "results and the rest"},
}

const (
	rpmWarmConfig = "td-warm"   // builddep snapshots off: dnf installs the BuildRequires every time
	rpmHitConfig  = "td-hit"    // builddep snapshots on
	rpmPool       = "rpmbench"  // every config's pool
	rpmBuildUID   = 1000        // the build user of a bootstrapped root (rpmroot's default)
	rpmUser       = "mockbuild" // its name
)

func rpmColdConfig(rep int) string     { return fmt.Sprintf("td-cold-%02d", rep) }
func rpmParallelConfig(rep int) string { return fmt.Sprintf("td-par-%02d", rep) }

type rpmWorld struct {
	w        *world
	dist     *rpmdist.Dist
	host     *rpmdist.Host
	sock     string
	serve    *bgProc
	alt      string // ext4 scratch filesystem of the alternatives
	template string // the bootstrapped root, as mock's root cache holds it
	tarball  string
	compress string
	// tmpl is the ext of the workdir the template was copied from.
	results string
}

// rpmConfigText is the test distribution's mock config with room for
// every config of the benchmark in one pool.
func rpmConfigText(root string, d *rpmdist.Dist, builddeps bool) string {
	text := rpmdist.MockConfig(root, d.URL)
	text = strings.Replace(text, "'pool_size': '6G',", "'pool_size': '40G',", 1)
	text += "config_opts['plugin_conf']['lvm_root_opts']['pool_name'] = '" + rpmPool + "'\n"
	if !builddeps {
		text += "config_opts['thinroot']['builddep_snapshots'] = 0\n"
	}
	return text
}

// setupRPM builds (or reuses) the test distribution, writes the configs,
// starts the daemon, bootstraps the warm configs and makes the
// alternatives' root and root cache from one of thinroot's workdirs.
func (e *env) setupRPM(coldReps, parReps int) (*rpmWorld, error) {
	logw := &lineLog{logf: e.logf, prefix: "rpmdist: "}
	d, err := rpmdist.Ensure(e.ctx, logw)
	if err != nil {
		return nil, fmt.Errorf("the test distribution: %w", err)
	}
	w, err := e.newWorld("rpm", rpmPool, "40G", "2G")
	if err != nil {
		return nil, err
	}
	rw := &rpmWorld{w: w, dist: d, sock: filepath.Join(w.dir, "api.sock"), compress: "gzip", results: filepath.Join(w.dir, "results")}
	if _, err := os.Stat("/bin/pigz"); err == nil {
		rw.compress = "pigz"
	}
	configs := filepath.Join(w.dir, "configs")
	if err := os.MkdirAll(configs, 0o755); err != nil {
		return rw, err
	}
	w.extraEnv = []string{"THINROOT_CONFIG_DIR=" + configs, "THINROOT_CACHE_DIR=" + filepath.Join(w.dir, "cache")}
	write := func(root string, builddeps bool) error {
		w.configs = append(w.configs, root)
		return os.WriteFile(filepath.Join(configs, root+".cfg"), []byte(rpmConfigText(root, d, builddeps)), 0o644)
	}
	if err := write(rpmWarmConfig, false); err != nil {
		return rw, err
	}
	if err := write(rpmHitConfig, true); err != nil {
		return rw, err
	}
	for r := 0; r < coldReps; r++ {
		if err := write(rpmColdConfig(r), true); err != nil {
			return rw, err
		}
	}
	for r := 0; r < parReps; r++ {
		if err := write(rpmParallelConfig(r), true); err != nil {
			return rw, err
		}
	}
	if rw.host, err = d.NewHost(filepath.Join(w.dir, "host")); err != nil {
		return rw, err
	}
	rw.serve, err = e.start(w, "serve", func() bool {
		_, err := os.Stat(rw.sock)
		return err == nil && isFUSE(w.mnt)
	}, "serve", "--mount", w.mnt, "--socket", rw.sock, "--jobs", strconv.Itoa(parallelBuilds))
	if err != nil {
		return rw, err
	}
	for _, c := range []string{rpmWarmConfig, rpmHitConfig} {
		e.logf("rpm: bootstrapping %s (dnf install @buildsys-build)", c)
		if err := e.tr(w, "init", c); err != nil {
			return rw, err
		}
		w.poolMade = true
	}
	// The alternatives' root: the bytes of thinroot's postinit snapshot
	// (the root after mock's init), copied out of a workdir.
	altSize := int64(16 << 30)
	if rw.alt, err = e.scratchFS("rpm-alt", altSize); err != nil {
		return rw, err
	}
	rw.template = filepath.Join(rw.alt, "template")
	if err := os.MkdirAll(rw.template, 0o755); err != nil {
		return rw, err
	}
	rw.tarball = filepath.Join(rw.alt, "root_cache.tar.gz")
	dir := filepath.Join(w.mnt, "pools", rpmPool, "configs", rpmWarmConfig, "snapshots", "postinit", "tmpl")
	if err := e.run(nil, "mkdir", dir); err != nil {
		return rw, err
	}
	src := filepath.Join(w.basedir, rpmWarmConfig+"-tmpl", "root")
	err = e.run(nil, "cp", "-a", src+"/.", rw.template+"/")
	if err2 := e.run(nil, "rmdir", dir); err == nil {
		err = err2
	}
	if err != nil {
		return rw, fmt.Errorf("copy the bootstrapped root: %w", err)
	}
	// mock's root_cache plugin.
	if err := e.run(nil, "tar", "--one-file-system", "--exclude-caches", "--exclude-caches-under",
		"--use-compress-program", rw.compress, "-cf", rw.tarball, "-C", rw.template, "."); err != nil {
		return rw, err
	}
	// One untimed builddep of each package warms dnf's metadata cache, as
	// on a build host that builds all day.
	if err := os.MkdirAll(rw.results, 0o755); err != nil {
		return rw, err
	}
	return rw, nil
}

// lineLog sends a writer's lines to logf.
type lineLog struct {
	logf   func(string, ...any)
	prefix string
	buf    bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.logf("%s%s", l.prefix, strings.TrimRight(line, "\n"))
	}
}

// rpmRun is one timed build and its phases.
type rpmRun struct {
	total  time.Duration
	phases map[string]time.Duration
}

// thinrootBuild submits one RPM build through the daemon and waits for it;
// the phases come from its state.log.
func (e *env) thinrootBuild(rw *rpmWorld, cfg, srpm, ext string) (rpmRun, error) {
	args := []string{"build", cfg, "--socket", rw.sock, "--srpm", srpm, "--uniqueext", ext}
	for _, d := range rpmDefines(srpm) {
		args = append(args, "--define", d)
	}
	cmd := exec.CommandContext(e.ctx, e.thinroot, args...)
	cmd.Env = append(os.Environ(), rw.w.env()...)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	total := time.Since(t0)
	if err != nil {
		return rpmRun{}, fmt.Errorf("thinroot build %s --srpm %s: %w: %s", cfg, filepath.Base(srpm), err, tail(out.String(), 1500))
	}
	state := filepath.Join(rw.w.basedir, cfg+"-"+ext, "result", "state.log")
	ph, err := statePhases(state, t0, t0.Add(total))
	if err != nil {
		return rpmRun{}, err
	}
	return rpmRun{total: total, phases: ph}, nil
}

// statePhases splits [t0, end] at the marks of a state.log:
// root ready until "Start: chroot init"; BuildRequires from "Start: build
// setup" to its Finish; rpmbuild from "Start: rpmbuild" to its Finish;
// the rest (results, removing the workdir, the client) after that.
func statePhases(path string, t0, end time.Time) (map[string]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("state.log: %w", err)
	}
	defer f.Close()
	marks := map[string]time.Time{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		stamp, msg, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05,000", stamp, time.Local)
		if err != nil {
			continue
		}
		for _, k := range []string{"Start: chroot init", "Start: build setup", "Finish: build setup", "Start: rpmbuild", "Finish: rpmbuild"} {
			if strings.HasPrefix(msg, k) {
				if _, seen := marks[k]; !seen {
					marks[k] = at
				}
			}
		}
	}
	for _, k := range []string{"Start: chroot init", "Start: build setup", "Finish: build setup", "Start: rpmbuild", "Finish: rpmbuild"} {
		if _, ok := marks[k]; !ok {
			return nil, fmt.Errorf("%s has no %q", path, k)
		}
	}
	// state.log has milliseconds; the client's clock is the same host's.
	ready := marks["Start: chroot init"].Sub(t0)
	br := marks["Finish: build setup"].Sub(marks["Start: build setup"])
	rb := marks["Finish: rpmbuild"].Sub(marks["Start: rpmbuild"])
	rest := end.Sub(t0) - ready - br - rb
	return map[string]time.Duration{"ready": max(ready, 0), "buildrequires": br, "rpmbuild": rb, "results": max(rest, 0)}, nil
}

// handBuild is mock's way by hand: make the root (untar or overlay), the
// host's dnf builddep into it, rpmbuild --rebuild in it as the build
// user, the RPMs copied out. It returns how to remove the root (untimed).
func (e *env) handBuild(rw *rpmWorld, approach, srpm string, rep int) (rpmRun, func() error, error) {
	run := rpmRun{phases: map[string]time.Duration{}}
	dst := filepath.Join(rw.alt, "run", fmt.Sprintf("%s-%02d", approach, rep))
	root := dst
	var rm func() error
	t0 := time.Now()
	mark := t0
	phase := func(id string) {
		now := time.Now()
		run.phases[id] += now.Sub(mark)
		mark = now
	}
	switch approach {
	case "untar":
		rm = func() error { return os.RemoveAll(dst) }
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return run, rm, err
		}
		if err := e.run(nil, "tar", "--use-compress-program", rw.compress, "-xf", rw.tarball, "-C", dst); err != nil {
			return run, rm, err
		}
	case "overlay":
		upper, work, merged := filepath.Join(dst, "upper"), filepath.Join(dst, "work"), filepath.Join(dst, "merged")
		root = merged
		rm = func() error {
			if err := syscall.Unmount(merged, 0); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
				return fmt.Errorf("unmount %s: %w", merged, err)
			}
			return os.RemoveAll(dst)
		}
		for _, d := range []string{upper, work, merged} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return run, rm, err
			}
		}
		if err := e.run(nil, "mount", "-t", "overlay", "overlay", "-o",
			"lowerdir="+rw.template+",upperdir="+upper+",workdir="+work, merged); err != nil {
			return run, rm, err
		}
	default:
		return run, nil, fmt.Errorf("unknown approach %q", approach)
	}
	phase("ready")
	// mock without a bootstrap: the host's dnf installs the SRPM's
	// BuildRequires into the root.
	var out bytes.Buffer
	cmd := rw.host.DNF(e.ctx, root, "builddep", srpm)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return run, rm, fmt.Errorf("dnf builddep %s: %w: %s", filepath.Base(srpm), err, tail(out.String(), 1500))
	}
	phase("buildrequires")
	home := filepath.Join(root, "builddir")
	if err := os.MkdirAll(filepath.Join(home, "build"), 0o755); err != nil {
		return run, rm, err
	}
	inRoot := filepath.Join("/builddir", filepath.Base(srpm))
	if err := e.run(nil, "cp", srpm, filepath.Join(root, inRoot)); err != nil {
		return run, rm, err
	}
	if err := e.run(nil, "chown", "-R", fmt.Sprintf("%d:%d", rpmBuildUID, rpmBuildUID), home); err != nil {
		return run, rm, err
	}
	phase("results") // setup between the phases, counted with the rest
	out.Reset()
	argv := []string{"rpmbuild", "--rebuild", "--define", "_topdir /builddir/build"}
	for _, d := range rpmDefines(srpm) {
		argv = append(argv, "--define", d)
	}
	cmd = rpmdist.Chroot(e.ctx, root, rpmBuildUID, rpmBuildUID, []string{"HOME=/builddir", "USER=" + rpmUser},
		append(argv, inRoot)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return run, rm, fmt.Errorf("rpmbuild --rebuild %s: %w: %s", filepath.Base(srpm), err, tail(out.String(), 1500))
	}
	phase("rpmbuild")
	res := filepath.Join(rw.results, fmt.Sprintf("%s-%02d", approach, rep))
	if err := os.MkdirAll(res, 0o755); err != nil {
		return run, rm, err
	}
	// The RPMs rpmbuild wrote, by the paths it printed (in the root).
	var rpms []string
	for _, line := range strings.Split(out.String(), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "Wrote: "); ok && strings.HasSuffix(p, ".rpm") && !strings.HasSuffix(p, ".src.rpm") {
			rpms = append(rpms, filepath.Join(root, p))
		}
	}
	if len(rpms) == 0 {
		return run, rm, fmt.Errorf("rpmbuild --rebuild %s made no RPM: %s", filepath.Base(srpm), tail(out.String(), 800))
	}
	for _, p := range rpms {
		if err := e.run(nil, "cp", p, res); err != nil {
			return run, rm, err
		}
	}
	phase("results")
	run.total = time.Since(t0)
	return run, rm, nil
}

// benchRPM is benchmark 6.
func (e *env) benchRPM(rw *rpmWorld, reps, ccReps, coldReps, parReps int) (*Benchmark, error) {
	b := &Benchmark{ID: "rpm", Title: "6. RPM builds end to end",
		What: "wall time of one RPM rebuild from its submission until its results are out, and its phases"}
	samples := map[string][]rpmRun{}
	key := func(a, s string) string { return a + "/" + s }
	srpm := func(name string) string { return rw.dist.SRPM(name) }
	// The builddep snapshot of each package, made once (untimed).
	for _, s := range rpmSRPMs {
		e.logf("rpm: first build of %s on %s (makes its builddep snapshot; not timed)", s.name, rpmHitConfig)
		if _, err := e.thinrootBuild(rw, rpmHitConfig, srpm(s.name), "first-"+s.id); err != nil {
			return b, err
		}
	}
	// One untimed builddep by hand warms dnf's cache for the alternatives.
	for _, s := range rpmSRPMs {
		_, rm, err := e.handBuild(rw, "overlay", srpm(s.name), 99)
		if rm != nil {
			rm()
		}
		if err != nil {
			return b, err
		}
	}
	hand := []string{"untar", "overlay"}
	for rep := 0; rep < reps; rep++ {
		for _, s := range rpmSRPMs {
			if s.id == "cc" && rep >= ccReps {
				continue
			}
			order := []string{"thinroot-warm", "thinroot-hit", "untar", "overlay"}
			for k := range order {
				a := order[(k+rep)%len(order)]
				if err := e.ctx.Err(); err != nil {
					return b, err
				}
				var r rpmRun
				var err error
				switch a {
				case "thinroot-warm":
					r, err = e.thinrootBuild(rw, rpmWarmConfig, srpm(s.name), fmt.Sprintf("%s-w%02d", s.id, rep))
				case "thinroot-hit":
					r, err = e.thinrootBuild(rw, rpmHitConfig, srpm(s.name), fmt.Sprintf("%s-h%02d", s.id, rep))
				default:
					var rm func() error
					r, rm, err = e.handBuild(rw, a, srpm(s.name), rep)
					if rm != nil {
						if rerr := rm(); rerr != nil && err == nil {
							err = rerr
						}
					}
				}
				if err != nil {
					return b, fmt.Errorf("rpm %s %s rep %d: %w", a, s.id, rep, err)
				}
				samples[key(a, s.id)] = append(samples[key(a, s.id)], r)
				syncAll()
			}
		}
		e.logf("rpm: repetition %d/%d done", rep+1, reps)
	}
	for rep := 0; rep < coldReps; rep++ {
		e.logf("rpm: cold config %d/%d", rep+1, coldReps)
		r, err := e.thinrootBuild(rw, rpmColdConfig(rep), srpm(rpmdist.SRPMTiny), "cold")
		if err != nil {
			return b, err
		}
		samples[key("thinroot-cold", "tiny")] = append(samples[key("thinroot-cold", "tiny")], r)
		syncAll()
	}
	for _, s := range rpmSRPMs {
		var thin *Measurement
		for _, a := range rpmApproaches {
			runs := samples[key(a.id, s.id)]
			if len(runs) == 0 {
				continue
			}
			totals := make([]time.Duration, len(runs))
			for i, r := range runs {
				totals[i] = r.total
			}
			m := b.add(measure("rpm/"+a.id+"/"+s.id, a.id, s.label, a.label, "s", secs(totals)))
			m.Extra = map[string]float64{}
			for _, p := range rpmPhases {
				ds := make([]time.Duration, len(runs))
				for i, r := range runs {
					ds[i] = r.phases[p.id]
				}
				m.Extra[p.id+"_p50_s"] = measure("", "", "", "", "", secs(ds)).P50
			}
			if a.id == "thinroot-hit" {
				thin = m
			}
		}
		if thin != nil {
			for _, a := range rpmApproaches {
				if m := b.find("rpm/" + a.id + "/" + s.id); m != nil && m != thin {
					thin.against(a.id+"_over_thinroot-hit", m)
				}
			}
			if w := b.find("rpm/thinroot-warm/" + s.id); w != nil {
				for _, h := range hand {
					if m := b.find("rpm/" + h + "/" + s.id); m != nil {
						w.against(h+"_over_thinroot-warm", m)
					}
				}
			}
		}
	}
	// 8 at once on a cold config.
	for rep := 0; rep < parReps; rep++ {
		e.logf("rpm: %d builds at once on a cold config (%d/%d)", parallelBuilds, rep+1, parReps)
		m, err := e.rpmParallel(rw, rpmParallelConfig(rep), srpm(rpmdist.SRPMTiny), b)
		if err != nil {
			return b, err
		}
		b.add(m)
	}
	b.headline(b.find("rpm/thinroot-hit/tiny"))
	b.Commands = []string{
		"thinroot: thinroot serve --jobs 8 (tree, builder, API; one warm spare per config and snapshot in use; 8 builds may run at once, for the 8-at-once row; the others run one at a time), then per build: thinroot build <config> --srpm <SRPM> --uniqueext <ext>, timed until the client exits; the phases from the build's result/state.log",
		"thinroot, cold config: a config never bootstrapped, so the build bootstraps it (the host's dnf installs @buildsys-build into an empty root), installs the BuildRequires and takes their builddep snapshot, then runs rpmbuild",
		"thinroot, warm config: config_opts['thinroot']['builddep_snapshots'] = 0, so every build's BuildRequires are installed by dnf in its fresh workdir, as mock does",
		"thinroot, builddep snapshot hit: the same SRPM built once before on the config (untimed), so the build clones the snapshot holding its BuildRequires",
		"untar: mkdir $D; tar --use-compress-program " + rw.compress + " -xf root_cache.tar.gz -C $D; dnf --installroot $D builddep <SRPM>; rpmbuild --rebuild <SRPM> as the build user in $D (chroot, with /proc and /dev); cp the RPMs out",
		"overlay: mount -t overlay -o lowerdir=$ROOT,upperdir=$D/upper,workdir=$D/work overlay $D/merged; the same three steps in $D/merged",
		"the root cache and the overlay's lower directory hold the bytes of thinroot's postinit snapshot (copied out of a workdir), so every approach starts from the same root; dnf's metadata cache is warm for all (an untimed builddep by hand and a first thinroot build of each package come first)",
		"between builds (not timed): the root is removed, then sync",
	}
	b.Notes = append(b.Notes,
		"Phases: root ready is from the submission (the first command) until the root can be entered (thinroot: state.log's \"Start: chroot init\", which comes after any bootstrap and the workdir); BuildRequires is \"build setup\" (the package manager's run, or the builddep snapshot's clone); rpmbuild is \"rpmbuild\"; the rest is everything after and between (results, the installed-packages list, the SRPM's install, removing the workdir, the client).",
		fmt.Sprintf("Repetitions: %d of each warm build (%d of the C one), %d cold builds (each on a config of its own), %d run(s) of %d builds at once.", reps, min(reps, ccReps), coldReps, parReps, parallelBuilds))
	return b, nil
}

// rpmParallel submits parallelBuilds builds of srpm at once on a cold
// config and measures the wall time until all are done, with the figures
// the target needs: how many bootstraps and BuildRequires installs ran,
// and how long the bootstrap, the install and the builds' rpmbuild took.
func (e *env) rpmParallel(rw *rpmWorld, cfg, srpm string, b *Benchmark) (*Measurement, error) {
	var wg sync.WaitGroup
	errs := make([]error, parallelBuilds)
	runs := make([]rpmRun, parallelBuilds)
	t0 := time.Now()
	for i := 0; i < parallelBuilds; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = e.thinrootBuild(rw, cfg, srpm, fmt.Sprintf("p%d", i))
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	out, err := e.output(rw.w.env(), e.thinroot, "builds", "--json", "--socket", rw.sock)
	if err != nil {
		return nil, err
	}
	var builds []builder.Build
	if err := json.Unmarshal(out, &builds); err != nil {
		return nil, fmt.Errorf("thinroot builds --json: %w", err)
	}
	boots, installs := 0, 0
	var bootstrap time.Duration
	for _, bd := range builds {
		if bd.Request.Config != cfg {
			continue
		}
		if bd.Bootstrapped {
			boots++
			for i, p := range bd.Phases {
				if p.State == builder.StateBootstrapping && i+1 < len(bd.Phases) {
					bootstrap = bd.Phases[i+1].At.Sub(p.At)
				}
			}
		}
		if bd.RPM != nil {
			installs += bd.RPM.PackageManagerRuns
		}
	}
	var brMax time.Duration
	rbs := make([]time.Duration, 0, len(runs))
	for _, r := range runs {
		brMax = max(brMax, r.phases["buildrequires"])
		rbs = append(rbs, r.phases["rpmbuild"])
	}
	m := measure("rpm/parallel/tiny", "thinroot-parallel", rpmSRPMs[0].label,
		fmt.Sprintf("thinroot: %d rebuilds submitted at once on a cold config", parallelBuilds), "s", secs([]time.Duration{wall}))
	rb := measure("", "", "", "", "", secs(rbs))
	m.Extra = map[string]float64{
		"bootstraps": float64(boots), "buildrequires_installs": float64(installs),
		"bootstrap_s": round(bootstrap.Seconds(), 3), "buildrequires_s": round(brMax.Seconds(), 3),
		"rpmbuild_p50_s": rb.P50,
	}
	if solo := b.find("rpm/thinroot-hit/tiny"); solo != nil {
		m.Extra["one_rpmbuild_p50_s"] = solo.Extra["rpmbuild_p50_s"]
	}
	return m, nil
}

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	sort.Float64s(out)
	return roundAll(out, 4)
}

// closeRPM stops the daemon and scrubs the configs through their files.
func (e *env) closeRPM(rw *rpmWorld) error {
	var errs []error
	if rw.serve != nil {
		if err := rw.serve.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range rw.w.configs {
		if err := e.tr(rw.w, "scrub", c); err != nil {
			errs = append(errs, err)
		}
	}
	rw.w.configs = nil
	if err := e.closeWorld(rw.w, nil); err != nil {
		errs = append(errs, err)
	}
	return joinErrs(errs)
}

func joinErrs(errs []error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
