package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinroot/thinroot/builder"
)

// Benchmark 4: builds submitted at once on a config nobody has
// bootstrapped yet, through the daemon, against one bootstrap and one
// build alone. Every repetition uses configs of its own (all the same
// busybox config under another name), so each one starts cold.

const parallelBuilds = 8

// buildScript is the build: a little shell work in the root and a
// result file, the same for every build.
const buildScript = `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo built > "$RESULTS/out"`

type bldWorld struct {
	w     *world
	sock  string
	serve *bgProc
}

func soloConfig(rep int) string     { return fmt.Sprintf("busybox-s%02d", rep) }
func parallelConfig(rep int) string { return fmt.Sprintf("busybox-p%02d", rep) }

// setupBuilds starts thinroot serve with every config the repetitions use.
func (e *env) setupBuilds(reps int) (*bldWorld, error) {
	w, err := e.newWorld("bld", "bld", "8G", defaultVolume)
	if err != nil {
		return nil, err
	}
	bw := &bldWorld{w: w, sock: filepath.Join(w.dir, "api.sock")}
	args := []string{"serve", "--mount", w.mnt, "--socket", bw.sock}
	for r := 0; r < reps; r++ {
		for _, c := range []string{soloConfig(r), parallelConfig(r)} {
			w.configs = append(w.configs, c)
			args = append(args, "--config", c)
		}
	}
	args = append(args, w.configArgs()...)
	args = append(args, "--bootstrap", "/bin/sh", "--bootstrap", e.busybox)
	bw.serve, err = e.start(w, "serve", func() bool {
		_, err := os.Stat(bw.sock)
		return err == nil && isFUSE(w.mnt)
	}, args...)
	return bw, err
}

// build submits one build and waits for it; its log goes nowhere.
func (bw *bldWorld) buildCmd(e *env, cfg string) *exec.Cmd {
	cmd := exec.CommandContext(e.ctx, e.thinroot, "build", cfg, "--socket", bw.sock, "--", "/bin/sh", "-c", buildScript)
	cmd.Env = append(os.Environ(), bw.w.env()...)
	cmd.Dir = "/"
	return cmd
}

func runBuilds(cmds []*exec.Cmd) (time.Duration, error) {
	outs := make([]*strings.Builder, len(cmds))
	t0 := time.Now()
	for i, c := range cmds {
		outs[i] = &strings.Builder{}
		c.Stdout, c.Stderr = outs[i], outs[i]
		if err := c.Start(); err != nil {
			return 0, err
		}
	}
	var errs []error
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", strings.Join(c.Args[1:3], " "), err, tail(outs[i].String(), 400)))
		}
	}
	return time.Since(t0), errors.Join(errs...)
}

// benchBuilds is benchmark 4.
func (e *env) benchBuilds(bw *bldWorld, reps int) (*Benchmark, error) {
	b := &Benchmark{ID: "builds", Title: fmt.Sprintf("4. %d builds at once on a cold config, through the daemon", parallelBuilds),
		What: "wall time from submitting the builds until the last thinroot build client exits"}
	var solo, par []time.Duration
	for r := 0; r < reps; r++ {
		if err := e.ctx.Err(); err != nil {
			return b, err
		}
		one := func() error {
			d, err := runBuilds([]*exec.Cmd{bw.buildCmd(e, soloConfig(r))})
			solo = append(solo, d)
			return err
		}
		many := func() error {
			var cmds []*exec.Cmd
			for i := 0; i < parallelBuilds; i++ {
				cmds = append(cmds, bw.buildCmd(e, parallelConfig(r)))
			}
			d, err := runBuilds(cmds)
			par = append(par, d)
			return err
		}
		// Alternate which goes first, so neither always follows the other.
		first, second := one, many
		if r%2 == 1 {
			first, second = many, one
		}
		if err := first(); err != nil {
			return b, err
		}
		syncAll()
		if err := second(); err != nil {
			return b, err
		}
		syncAll()
		e.logf("builds: repetition %d/%d done", r+1, reps)
	}
	soloM := b.add(measure("builds/solo", "thinroot", "", "1 build alone on a cold config (its bootstrap + the build)", "ms", ms(solo)))
	parM := b.add(measure("builds/parallel", "thinroot", "", fmt.Sprintf("%d builds submitted at once on a cold config", parallelBuilds), "ms", ms(par)))
	parM.Ratios = Ratios{
		"parallel_over_solo_p50":            ratio(parM.P50, soloM.P50),
		"parallel_over_solo_p95":            ratio(parM.P95, soloM.P95),
		"eight_solo_runs_over_parallel_p50": ratio(parallelBuilds*soloM.P50, parM.P50),
	}
	b.headline(parM)

	// Check what the daemon did: one bootstrap per config, every build
	// succeeded.
	out, err := e.output(bw.w.env(), e.thinroot, "builds", "--json", "--socket", bw.sock)
	if err != nil {
		return b, err
	}
	var list []builder.Build
	if err := json.Unmarshal(out, &list); err != nil {
		return b, fmt.Errorf("thinroot builds --json: %w", err)
	}
	boots := map[string]int{}
	ok := 0
	for _, bl := range list {
		if bl.Bootstrapped {
			boots[bl.Request.Config]++
		}
		if bl.State == builder.StateSucceeded {
			ok++
		}
	}
	once := 0
	for _, n := range boots {
		if n == 1 {
			once++
		}
	}
	b.Notes = append(b.Notes,
		fmt.Sprintf("The daemon ran %d builds; %d succeeded; %d of %d configs were bootstrapped exactly once (one build each ran the bootstrap, the others waited for it).", len(list), ok, once, 2*reps),
		"The daemon ran with its default --jobs (one build at a time per CPU).",
		"Ratios: parallel_over_solo is the 8 builds' wall time over the single build's; eight_solo_runs_over_parallel is 8 times the single build over the 8 at once (what running them one after the other, each on a cold config, would cost, over what the daemon took).",
	)
	b.Commands = []string{
		"thinroot serve --mount $MNT --socket $SOCK --config busybox-pNN --config busybox-sNN ... --pool bld --size " + defaultVolume + " --bootstrap /bin/sh --bootstrap testdata/bootstrap/busybox.sh",
		"solo: thinroot build busybox-sNN --socket $SOCK -- /bin/sh -c '" + buildScript + "'",
		fmt.Sprintf("parallel: %d x the same on busybox-pNN, started together", parallelBuilds),
	}
	return b, nil
}
