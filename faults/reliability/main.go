// Command reliability writes RELIABILITY.md from the fault suite's own
// output: the JSON lines the suite appends to $THINROOT_FAULTS_REPORT (one
// per case: runs, checks, outcomes, failure, known limits) and, for the
// failures found and fixed, the commits whose messages carry a
// "Fault-found-by: <suite>" trailer. Nothing in the file is typed by
// hand; scripts/reliability.sh runs the suite and then this.
//
//	go run ./faults/reliability -report r.jsonl -out RELIABILITY.md
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/thinroot/thinroot/faults"
)

// suites in the order the document gives them, with what each scenario is
// and how it runs.
var suites = []struct{ name, title, what, how string }{
	{"crash", "Crash points",
		"Every multi-step operation runs in a helper process armed to SIGKILL itself at each named point " +
			"(internal/crashpoint), and once more killed from outside in the middle of the bootstrap command. " +
			"After each kill, first the Manager that kept running (a daemon) and then a restarted one must show " +
			"nothing half made (every snapshot's filesystem is clean and holds the root, every workdir listed can be " +
			"entered and written), leak no mount or loop device, leave no intent, keep the bystander config's file and " +
			"snapshot, and show either the picture from before the operation or the one the serial model gives after " +
			"it; the Manager and the disk must agree; a rolled-back operation must succeed when tried again. " +
			"Outcomes: rolled-back, completed (finished by recovery), no-change (builds, whose workdir goes either way).",
		"`go test ./faults -run TestCrashMatrix` (faults.RunCrashMatrix, parameterized by backend)"},
	{"fuse-kill", "FUSE server killed",
		"`thinroot mount` is SIGKILLed while a shell has its working directory in the tree, and while a mkdir is in " +
			"flight (at each point inside the workdir creation, and at random moments with a fixed seed). A new server " +
			"must mount on the same mount point; the workdir must either exist and be enterable or have left nothing.",
		"`go test ./faults -run TestFUSEServerKilled`"},
	{"pool-full", "Pool full",
		"Through `thinroot serve`, a workdir fills a 512 MiB pool until writes fail: the daemon stays up, other " +
			"workdirs stay readable, stats, stats.json and the API say full, a mkdir gets ENOSPC with the reason in the " +
			"log; after the filler's rmdir everything works again and `e2fsck -fn` is clean on every volume image.",
		"`go test ./faults -run TestPoolFull`"},
	{"races", "Races",
		"The CLI and two `thinroot serve` instances on one state directory act on one config in rounds of three " +
			"operations chosen at random with a fixed seed (init, also through builds; snapshot; rollback-to; set " +
			"current; remove-snapshot; scrub; workdir create and remove). After each round a fresh Manager and the " +
			"disk agree, the invariants hold, and the picture is a serial outcome: some order of the round's " +
			"operations, through the serial model, gives it, where each accepted operation took effect exactly " +
			"once at its place and each refused one had no effect (or a partial effect it is known to leave). " +
			"Outcomes count accepted and refused operations. Also: a second daemon starting during a build.",
		"`go test ./faults -run 'TestRaces|TestSecondDaemon'` (THINROOT_FAULTS_SEED, default 7)"},
	{"bad-input", "Bad input",
		"Each class of bad name ('/', '..', NUL, a line break, 256, 1000 and 2000 bytes, non-UTF-8, a leading '-' " +
			"or '.', a dot, a space, LVM's reserved words, empty) through the tree (mkdir, both action files), the " +
			"Manager, the CLI and the API; oversized and split writes to the action files. Nothing may change.",
		"`go test ./faults -run TestBadNames`"},
	{"fuzz", "Fuzzing",
		"Go fuzz targets with committed seed corpora (testdata/fuzz/<Target> in each package): names and LV " +
			"names (lvm), action-file writes (fsview), API request bodies (builder), config text (mockcfg). Runs " +
			"counts the inputs executed.",
		"`scripts/fuzz-short.sh` (FUZZTIME per target, default 15s)"},
	{"security", "Security",
		"Against a running daemon: an outsider reads and changes nothing through the tree (EACCES) or the socket " +
			"(cannot connect; 403 once it is made reachable on purpose), a member can; every symlink in the tree " +
			"points at a workdir root, a result directory or inside the tree; a build sees no host process, other " +
			"workdir, the socket or the state directory; the socket, the tree's nodes and the state files have the " +
			"documented modes.",
		"`go test ./faults -run 'TestOutsiders|TestSymlinks|TestBuildIsolation|TestModes'`"},
}

type fix struct{ hash, subject, suite string }

func main() {
	report := flag.String("report", "", "the suite's JSON lines (comma-separated files; console logs with marked lines work too)")
	out := flag.String("out", "RELIABILITY.md", "where to write")
	repo := flag.String("repo", ".", "the git work tree, for the fixes' commits")
	flag.Parse()
	var cases []faults.Case
	for _, f := range strings.Split(*report, ",") {
		cs, err := faults.ReadReport(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reliability:", err)
			os.Exit(1)
		}
		cases = append(cases, cs...)
	}
	sort.SliceStable(cases, func(i, j int) bool { return cases[i].Suite < cases[j].Suite })
	fixes, err := fixesFrom(*repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability: reading the fixes from git:", err)
		os.Exit(1)
	}
	doc := render(cases, fixes, commit(*repo))
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	failed := 0
	for _, c := range cases {
		if c.Failed {
			failed++
		}
	}
	fmt.Printf("%s: %d cases, %d failed\n", *out, len(cases), failed)
	if failed > 0 {
		os.Exit(1)
	}
}

// fixesFrom lists the commits that carry a Fault-found-by trailer.
func fixesFrom(repo string) ([]fix, error) {
	cmd := exec.Command("git", "-C", repo, "log", "--reverse",
		"--format=%h%x00%s%x00%(trailers:key=Fault-found-by,valueonly,separator=%x20)%x01")
	data, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var out []fix
	for _, rec := range bytes.Split(data, []byte{1}) {
		f := strings.SplitN(strings.TrimSpace(string(rec)), "\x00", 3)
		if len(f) == 3 && strings.TrimSpace(f[2]) != "" {
			out = append(out, fix{hash: f[0], subject: f[1], suite: strings.TrimSpace(f[2])})
		}
	}
	return out, nil
}

func commit(repo string) string {
	b, err := exec.Command("git", "-C", repo, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func render(cases []faults.Case, fixes []fix, rev string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Reliability\n\n")
	p("Generated by `scripts/reliability.sh` from the fault suite's own JSON output and the fixes' commits, at %s "+
		"(%s). Do not edit: run the script again.\n\n", rev, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("What thinroot must survive and refuse, how each scenario is run, and what the last run found. Each case ")
	p("counts its runs (kills, rounds, probes, inputs) and the assertions it made. \"Found and fixed\" counts the ")
	p("commits whose message says `Fault-found-by: <scenario>`; \"left\" counts the cases that fail now plus the ")
	p("known limits the suite records with their reasons.\n\n")

	bySuite := map[string][]faults.Case{}
	for _, c := range cases {
		bySuite[c.Suite] = append(bySuite[c.Suite], c)
	}
	fixesBy := map[string][]fix{}
	for _, f := range fixes {
		fixesBy[f.suite] = append(fixesBy[f.suite], f)
	}
	p("## Summary\n\n| scenario | cases | runs | checks | failed now | found and fixed | left | seconds |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var tc, tr, tk, tf, tx, tl int
	var ts float64
	for _, s := range suites {
		cs := bySuite[s.name]
		runs, checks, failed, left, secs := 0, 0, 0, 0, 0.0
		for _, c := range cs {
			runs += c.Runs
			checks += c.Checks
			secs += c.Seconds
			if c.Failed {
				failed++
			}
			if c.Left != "" {
				left++
			}
		}
		p("| %s | %d | %d | %d | %d | %d | %d | %.0f |\n", s.title, len(cs), runs, checks, failed, len(fixesBy[s.name]),
			failed+left, secs)
		if s.name == "fuzz" {
			// Inputs, not kills or rounds: kept out of the totals.
			runs, checks = 0, 0
		}
		tc, tr, tk, tf, tx, tl, ts = tc+len(cs), tr+runs, tk+checks, tf+failed, tx+len(fixesBy[s.name]), tl+failed+left, ts+secs
	}
	p("| **all** | %d | %d | %d | %d | %d | %d | %.0f |\n\n", tc, tr, tk, tf, tx, tl, ts)
	p("The fuzzing row counts inputs; the totals leave them out.\n\n")
	// The matrix per backend: points x runs = kills.
	type tally struct{ points, runs int }
	matrix := map[string]*tally{}
	var backends []string
	for _, c := range bySuite["crash"] {
		if !strings.Contains(c.Case, " @ ") {
			continue
		}
		if matrix[c.Backend] == nil {
			matrix[c.Backend] = &tally{}
			backends = append(backends, c.Backend)
		}
		matrix[c.Backend].points++
		matrix[c.Backend].runs += c.Runs
	}
	sort.Strings(backends)
	for _, be := range backends {
		m := matrix[be]
		p("Crash matrix on %s: %d points x %d runs each = %d kills.\n\n", be, m.points, m.runs/m.points, m.runs)
	}

	for _, s := range suites {
		cs := bySuite[s.name]
		p("## %s\n\n%s\n\nRun: %s.\n\n", s.title, s.what, s.how)
		if len(cs) == 0 {
			p("Not run in this report.\n\n")
			continue
		}
		p("| case | backend | runs | checks | outcomes | result | s |\n|---|---|---:|---:|---|---|---:|\n")
		for _, c := range cs {
			res := "pass"
			switch {
			case c.Failed:
				res = "**FAIL**"
			case c.Left != "":
				res = "pass, limit noted"
			}
			p("| %s | %s | %d | %d | %s | %s | %.1f |\n", mdEscape(c.Case), orDash(c.Backend), c.Runs, c.Checks,
				outcomes(c.Outcomes), res, c.Seconds)
		}
		p("\n")
		if fs := fixesBy[s.name]; len(fs) > 0 {
			p("Found and fixed:\n\n")
			for _, f := range fs {
				p("- %s %s\n", f.hash, mdEscape(f.subject))
			}
			p("\n")
		}
	}

	p("## Left\n\n")
	any := false
	for _, s := range suites {
		for _, c := range bySuite[s.name] {
			if c.Failed {
				p("- **failing**: %s / %s (%s)\n", s.title, mdEscape(c.Case), orDash(c.Backend))
				any = true
			}
			if c.Left != "" {
				p("- %s / %s: %s\n", s.title, mdEscape(c.Case), mdEscape(c.Left))
				any = true
			}
		}
	}
	if !any {
		p("Nothing.\n")
	}
	p("\n## Backends\n\nThe cases above ran on the backends their rows name. The crash matrix is written once for every " +
		"backend (faults.RunCrashMatrix takes an lvmtest.Env); on lvm2 it runs in the VM of testdata/vm/run, where " +
		"device-mapper exists. Scenarios that drive the `thinroot` binary use the backend its configs name.\n\n")
	revs := map[string]map[string]bool{}
	for _, c := range cases {
		be := c.Backend
		if be == "" {
			be = "no backend (fuzzing, checks of the code)"
		}
		if revs[be] == nil {
			revs[be] = map[string]bool{}
		}
		revs[be][orDash(c.Commit)] = true
	}
	for _, be := range sortedKeys(revs) {
		p("- %s: run at %s\n", be, strings.Join(keys(revs[be]), ", "))
	}
	return b.String()
}

func outcomes(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
