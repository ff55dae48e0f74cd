package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultScratch is where a run works unless told otherwise: on the host
// disk, away from /tmp (which may be a small tmpfs elsewhere).
const DefaultScratch = "/var/lib/thinroot-bench"

// runFlags are run's flags; clean takes them too (and uses -scratch), so
// a wrapper can hand both the same arguments.
type runFlags struct {
	repo, out, scratch, thinroot, sizes, only, counts, goBenchtime *string
	reps, slowReps, goCount                                        *int
	rpmReps, rpmCCReps, rpmColdReps, rpmParReps                    *int
	logs                                                           *string
}

func newRunFlags(fs *flag.FlagSet) *runFlags {
	return &runFlags{
		repo:        fs.String("repo", ".", "the thinroot source tree"),
		out:         fs.String("out", ".", "directory for BENCHMARKS.json, BENCHMARKS.md and the chart"),
		scratch:     fs.String("scratch", DefaultScratch, "scratch directory (removed at the end)"),
		thinroot:    fs.String("thinroot", "", "thinroot binary (default REPO/bin/thinroot)"),
		reps:        fs.Int("reps", 20, "repetitions of each measurement"),
		slowReps:    fs.Int("slow-reps", 10, "repetitions of untar and cp -a for roots of 1000 MiB and more"),
		sizes:       fs.String("sizes", "50,300,1024", "root sizes in MiB for benchmark 1 (the middle one is the headline and benchmark 2's)"),
		only:        fs.String("only", "", "comma-separated subset: ready,space,control,builds,rpm,go (default: all)"),
		counts:      fs.String("lvm-counts", "bench/results/lvm-counts.json", "benchmark 5's counts from the VM, used when the file exists"),
		goBenchtime: fs.String("go-benchtime", "100ms", "-benchtime of the Go benchmarks"),
		goCount:     fs.Int("go-count", 5, "-count of the Go benchmarks"),
		logs:        fs.String("logs", "", "copy the thinroot daemons' logs here before the scratch directory goes"),
		rpmReps:     fs.Int("rpm-reps", 3, "repetitions of each warm RPM build (benchmark 6)"),
		rpmCCReps:   fs.Int("rpm-cc-reps", 2, "repetitions of the C-compiling RPM build (benchmark 6)"),
		rpmColdReps: fs.Int("rpm-cold-reps", 2, "RPM builds on a cold config, each bootstrapping one (benchmark 6)"),
		rpmParReps:  fs.Int("rpm-parallel-reps", 1, "runs of 8 RPM builds at once on a cold config (benchmark 6)"),
	}
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := newRunFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	repo, out, scratch, thinroot, reps, slowReps := f.repo, f.out, f.scratch, f.thinroot, f.reps, f.slowReps
	sizesFlag, only, counts, goBenchtime, goCount := f.sizes, f.only, f.counts, f.goBenchtime, f.goCount
	if os.Geteuid() != 0 {
		return errors.New("run needs root: loop devices, mounts, FUSE and chroot")
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	all := len(want) == 0
	do := func(id string) bool { return all || want[id] }

	root, err := filepath.Abs(*repo)
	if err != nil {
		return err
	}
	if *thinroot == "" {
		*thinroot = filepath.Join(root, "bin", "thinroot")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	countsPath, err := filepath.Abs(*counts)
	if err != nil {
		return err
	}
	scr, err := filepath.Abs(*scratch)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	e := &env{ctx: ctx, repo: root, scratch: scr, self: self, thinroot: *thinroot, logsDir: *f.logs,
		busybox: filepath.Join(root, "testdata", "bootstrap", "busybox.sh"),
		logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		}}
	for _, p := range []string{e.thinroot, e.busybox} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("need %s: %w (run make build first)", p, err)
		}
	}
	// A run killed earlier may have left mounts and loop devices behind.
	if _, err := os.Stat(scr); err == nil {
		if err := checkScratch(scr); err != nil {
			return err
		}
		e.logf("clearing what a previous run left in %s", scr)
		if err := sweep(scr, e.logf); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(scr, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(scr, scratchMarker), nil, 0o644); err != nil {
		return err
	}

	res := &Results{Generated: time.Now().UTC(), Commit: gitCommit(root), Complete: all}
	res.Method = Method{
		Caches: "warm: page caches are not dropped. The root cache, the template root and the postinit image stay in memory " +
			"between repetitions, as they do on a build host making buildroot after buildroot, and dropping caches " +
			"would also disturb the other users of this shared machine. Every buildroot is removed and sync run " +
			"(twice, for loop devices) before the next one is made, outside the timing, so no approach inherits " +
			"another's dirty pages.",
		Percentiles: "nearest rank: p50 of 20 samples is the 10th smallest, p95 the 19th",
		Reps:        *reps, SlowReps: min(*reps, *slowReps),
		Notes: "All figures come from this run on this machine, taken one after the other; the machine is shared, " +
			"so other work may add noise, alike for every approach (repetitions interleave the approaches).",
	}

	e.rpmReps = [4]int{*f.rpmReps, *f.rpmCCReps, *f.rpmColdReps, *f.rpmParReps}
	runErr := e.runAll(res, do, sizes, *reps, *slowReps, *goBenchtime, *goCount)

	// Cleanup, whatever happened: stop the daemons, scrub, remove pools,
	// then sweep anything left.
	e.logf("cleaning up")
	if err := e.cleanup(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("cleanup: %w", err))
	}
	if err := sweep(scr, e.logf); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("sweep: %w", err))
	}

	if c, err := readLVMCounts(countsPath); err == nil {
		res.LVMCounts = c
	} else if !errors.Is(err, os.ErrNotExist) {
		runErr = errors.Join(runErr, fmt.Errorf("lvm counts: %w", err))
	}
	res.Targets = targets(res)
	res.Seconds = round(time.Since(start).Seconds(), 4)
	if runErr != nil {
		res.Complete = false
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return errors.Join(runErr, err)
	}
	if err := writeJSONFile(filepath.Join(outDir, "BENCHMARKS.json"), res); err != nil {
		return errors.Join(runErr, err)
	}
	if err := report(res, outDir); err != nil {
		runErr = errors.Join(runErr, err)
	}
	e.logf("wrote %s (%.0f s)", filepath.Join(outDir, "BENCHMARKS.md"), res.Seconds)
	return runErr
}

// worlds made by this run, to clean up.
var worlds []*world

// runAll runs the selected benchmarks; the first failure stops the run
// (the figures so far are still written).
func (e *env) runAll(res *Results, do func(string) bool, sizes []int, reps, slowReps int, goBenchtime string, goCount int) error {
	var err error
	if res.Machine, err = e.machine(); err != nil {
		return err
	}
	if do("ready") || do("space") {
		mid := sizes[len(sizes)/2]
		setupSizes := sizes
		if !do("ready") {
			setupSizes = []int{mid}
		}
		mw, err := e.setupMain(setupSizes, do("ready"))
		if mw != nil {
			worlds = append(worlds, mw.w)
			if mw.btrfs != nil {
				worlds = append(worlds, mw.btrfs)
			}
		}
		if err != nil {
			return fmt.Errorf("setting up benchmark 1: %w", err)
		}
		for _, mb := range setupSizes {
			res.Roots = append(res.Roots, *mw.roots[mb])
		}
		res.Machine.PoolFS = fsType(filepath.Join(mw.w.state, "pools", mw.w.pool)) + " (image on a loop device, reflink=1); volumes ext4 on loop devices"
		res.Machine.AltFS = fsType(mw.alt) + " (image on a loop device)"
		if do("ready") {
			e.logf("benchmark 1: buildroot ready")
			b, err := e.benchReady(mw, setupSizes, reps, slowReps)
			res.Benchmarks = append(res.Benchmarks, b)
			if err != nil {
				b.Error = err.Error()
				return err
			}
		}
		if do("space") {
			e.logf("benchmark 2: space")
			b, err := e.benchSpace(mw, mid)
			res.Benchmarks = append(res.Benchmarks, b)
			if err != nil {
				b.Error = err.Error()
				return err
			}
		}
		if mw.btrfs != nil {
			if err := e.closeWorld(mw.btrfs, mw.btrfsTree); err != nil {
				return err
			}
		}
		if mw.spareTree != nil {
			if err := mw.spareTree.stop(); err != nil {
				return err
			}
		}
		if err := e.closeWorld(mw.w, mw.tree); err != nil {
			return err
		}
	}
	if do("control") {
		e.logf("benchmark 3: control plane")
		cw, err := e.setupControl()
		if cw != nil {
			worlds = append(worlds, cw.w)
		}
		if err != nil {
			return fmt.Errorf("setting up benchmark 3: %w", err)
		}
		b, err := e.benchControl(cw, reps)
		res.Benchmarks = append(res.Benchmarks, b)
		if err != nil {
			b.Error = err.Error()
			return err
		}
		if err := e.closeWorld(cw.w, cw.tree); err != nil {
			return err
		}
	}
	if do("builds") {
		e.logf("benchmark 4: parallel builds")
		bw, err := e.setupBuilds(reps)
		if bw != nil {
			worlds = append(worlds, bw.w)
		}
		if err != nil {
			return fmt.Errorf("setting up benchmark 4: %w", err)
		}
		b, err := e.benchBuilds(bw, reps)
		res.Benchmarks = append(res.Benchmarks, b)
		if err != nil {
			b.Error = err.Error()
			return err
		}
		if err := e.closeWorld(bw.w, bw.serve); err != nil {
			return err
		}
	}
	if do("rpm") {
		e.logf("benchmark 6: RPM builds end to end")
		r := e.rpmReps
		rw, err := e.setupRPM(r[2], r[3])
		if rw != nil && rw.w != nil {
			worlds = append(worlds, rw.w)
		}
		if err != nil {
			if rw != nil {
				e.closeRPM(rw)
			}
			return fmt.Errorf("setting up benchmark 6: %w", err)
		}
		b, err := e.benchRPM(rw, r[0], r[1], r[2], r[3])
		res.Benchmarks = append(res.Benchmarks, b)
		if cerr := e.closeRPM(rw); err == nil {
			err = cerr
		}
		if err != nil {
			b.Error = err.Error()
			return err
		}
	}
	if do("go") {
		e.logf("Go benchmarks")
		b, err := e.goBench(goBenchtime, goCount)
		res.Benchmarks = append(res.Benchmarks, b)
		if err != nil {
			b.Error = err.Error()
			return err
		}
	}
	return nil
}

// closeWorld stops the world's thinroot process, scrubs its configs and
// removes its pool, the way a user would.
func (e *env) closeWorld(w *world, p *bgProc) error {
	var errs []error
	if p != nil {
		if err := p.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.logsDir != "" {
		logs, _ := filepath.Glob(filepath.Join(w.dir, "*.log"))
		for _, l := range logs {
			if b, err := os.ReadFile(l); err == nil {
				os.MkdirAll(e.logsDir, 0o755)
				os.WriteFile(filepath.Join(e.logsDir, w.name+"-"+filepath.Base(l)), b, 0o644)
			}
		}
	}
	// The context may be cancelled already (a signal): cleanup must run.
	ce := *e
	ce.ctx = context.Background()
	for _, c := range w.configs {
		if err := ce.tr(w, append([]string{"scrub", c}, w.configArgs()...)...); err != nil {
			errs = append(errs, err)
		}
	}
	w.configs = nil
	// Scrubbing a pool's last config removes the pool too, as mock's scrub
	// does; remove it here only when something kept it.
	if w.poolMade && poolExists(w) {
		if err := ce.tr(w, "pool", "remove", w.pool); err != nil {
			errs = append(errs, err)
		}
	}
	w.poolMade = false
	return errors.Join(errs...)
}

func poolExists(w *world) bool {
	dir := "pools"
	if w.backend == "btrfs" {
		dir = "btrfs"
	}
	_, err := os.Stat(filepath.Join(w.state, dir, w.pool+".img"))
	return err == nil
}

// cleanup closes every world still open.
func (e *env) cleanup() error {
	var errs []error
	for _, p := range e.bg {
		if err := p.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range worlds {
		if len(w.configs) > 0 || w.poolMade {
			if err := e.closeWorld(w, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func cmdClean(args []string) error {
	fs := flag.NewFlagSet("clean", flag.ContinueOnError)
	scratch := newRunFlags(fs).scratch
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*scratch); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := checkScratch(*scratch); err != nil {
		return err
	}
	return sweep(*scratch, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
}

// scratchMarker marks a directory as a run's scratch directory: only such
// a directory is ever swept and removed.
const scratchMarker = ".thinroot-bench-scratch"

func checkScratch(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, scratchMarker)); err != nil {
		return fmt.Errorf("%s exists but is not a benchmark scratch directory (no %s); not touching it", dir, scratchMarker)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
