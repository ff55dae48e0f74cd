package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/lvm/lvmtest"
	"github.com/thinroot/thinroot/mockcfg"
)

// These tests run the built binary as a user would, without root: no
// pool is made, so nothing needs devices or mounts.

// Global flags work before the verb as well as after it.
func TestGlobalFlagsBeforeVerb(t *testing.T) {
	// pool stats names the state dir it looked in (and, only reading,
	// makes none).
	for _, args := range [][]string{
		{"--state-dir", "STATE", "pool", "stats", "nosuch"},
		{"pool", "stats", "nosuch", "--state-dir", "STATE"},
	} {
		dir := filepath.Join(t.TempDir(), "state")
		for i := range args {
			if args[i] == "STATE" {
				args[i] = dir
			}
		}
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitVolume {
			t.Fatalf("%v: exit %d, want %d: %s", args, code, exitVolume, errb.String())
		}
		if !strings.Contains(errb.String(), "no pools in "+dir) {
			t.Fatalf("%v: the state dir given was not used: %s", args, errb.String())
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%v: a command that only reads made the state dir (%v)", args, err)
		}
	}
}

// A run of the binary: its standard output, standard error and status.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return "exit " + itoa(r.code) + "\nstdout: " + r.out + "\nstderr: " + r.err
}

func itoa(n int) string { return strconv.Itoa(n) }

// exec runs the binary with the env's directories and extra environment.
func (e *cliEnv) exec(env []string, args ...string) result {
	e.t.Helper()
	cmd := e.cmd(args...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("thinroot %v: %v", args, err)
	}
	return r
}

func (e *cliEnv) x(args ...string) result { e.t.Helper(); return e.exec(nil, args...) }

// wantErr checks an exit status and that standard error is one line
// holding every want.
func wantErr(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\n%s", r.code, code, r)
		return
	}
	if n := strings.Count(strings.TrimRight(r.err, "\n"), "\n"); n != 0 {
		t.Errorf("the error takes %d lines, want one:\n%s", n+1, r.err)
	}
	for _, w := range want {
		if !strings.Contains(r.err, w) {
			t.Errorf("the error lacks %q:\n%s", w, r.err)
		}
	}
}

// Finding 1: a config flag never silently replaces a config file's
// value, a misspelt name is not taken for an ad hoc config, and nothing
// is left behind by a refused command.
func TestConfigFlagsRefused(t *testing.T) {
	e := newCLIEnv(t, false)
	r := e.x("list-snapshots", "busybx", "--size", "2G")
	wantErr(t, r, exitConfig, `no config "busybx"`, `did you mean "busybox"?`)
	if ents, _ := os.ReadDir(filepath.Join(e.state, "locks")); len(ents) != 0 {
		t.Errorf("a refused misspelt config left %d lock files", len(ents))
	}
	wantErr(t, e.x("list-snapshots", "busybox", "--pool", "other"), exitUsage,
		"--pool would override lvm_root_opts.pool_name of config busybox", "busybox.cfg", "(mockbuild)", "--ad-hoc")
	wantErr(t, e.x("snapshot", "busybox", "s", "--size", "3G", "--filesystem", "xfs"), exitUsage,
		"--filesystem and --size would override lvm_root_opts.filesystem and lvm_root_opts.size of config busybox", "(ext4, 2.0 GiB)")
	wantErr(t, e.x("init", "busybox", "--ad-hoc"), exitUsage, "config busybox has a file", "drop --ad-hoc")
	wantErr(t, e.x("init", "busybox", "--", "/bin/true"), exitUsage, "bootstrap argv after -- would override", "thinroot.bootstrap")
	wantErr(t, e.x("init", "busybx"), exitConfig, `no config "busybx"`, `did you mean "busybox"?`, "--ad-hoc")
	// --uniqueext is mock's own option: it works on any config.
	if r := e.x("list-snapshots", "busybox", "--uniqueext", "try1"); r.code != 0 {
		t.Errorf("--uniqueext on a config file: %s", r)
	}
	// Ad hoc flags on a command that names no config are refused too.
	wantErr(t, e.x("workdir", "list", "--pool", "p"), exitUsage, "--pool defines an ad hoc config, but no CONFIG is given")
}

// Finding 2: values are checked, naming the flag and what it takes.
func TestValuesChecked(t *testing.T) {
	e := newCLIEnv(t, false)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"init", "busybox", "--warn-percent", "200"}, []string{"--warn-percent 200", "above 0 and at most 100"}},
		{[]string{"init", "busybox", "--warn-percent", "95", "--refuse-percent", "50"}, []string{"--warn-percent 95 is above --refuse-percent 50"}},
		{[]string{"pool", "create", "p", "--refuse-percent", "50"}, []string{"--warn-percent 75 (the default) is above --refuse-percent 50"}},
		{[]string{"serve", "--jobs", "-1"}, []string{"--jobs -1", "1 or more"}},
		{[]string{"serve", "-j", "0"}, []string{"--jobs 0", "1 or more"}},
		{[]string{"serve", "--refresh", "0s"}, []string{"--refresh 0s", "above zero"}},
		{[]string{"build", "busybox", "--timeout", "-5s"}, []string{"--timeout -5s", "0 or more", "no limit"}},
		{[]string{"build", "busybox", "--timeout", "soon"}, []string{"--timeout soon", "90s"}},
		{[]string{"--log-level", "bogus", "pool", "list"}, []string{"--log-level bogus", "debug, info, warn or error"}},
		{[]string{"pool", "list", "--log-format", "xml"}, []string{"--log-format xml", "text or json"}},
		{[]string{"init", "x", "--ad-hoc", "--size", "abc"}, []string{"--size abc", "8G"}},
		{[]string{"pool", "create", "p", "--size", "0"}, []string{"--size 0", "above zero"}},
		{[]string{"init", "x", "--backend", "zfs"}, []string{"--backend zfs", "file, btrfs or lvm2"}},
		{[]string{"init", "x", "--backend", "lvm2"}, []string{"--backend lvm2 needs --volume-group"}},
		{[]string{"pool", "create", "p", "--backend", "lvm2"}, []string{"--backend lvm2 needs --volume-group"}},
		{[]string{"--basedir", "relative", "pool", "list"}, []string{"--basedir relative", "absolute path"}},
		{[]string{"workdir", "create", "busybox", "-rf"}, []string{"-rf", "-r takes the config as the next word", "after --"}},
		{[]string{"build", "busybox", "--source", "/nonexistent/src"}, []string{"--source /nonexistent/src: not a directory"}},
	} {
		wantErr(t, e.x(c.args...), exitUsage, c.want...)
	}
	// The environment's defaults are checked as the flags are.
	wantErr(t, e.exec([]string{"THINROOT_LOG_LEVEL=loud"}, "pool", "list"), exitUsage, "THINROOT_LOG_LEVEL=loud", "debug, info, warn or error")
}

// Finding 3: errors say what went wrong and what to do, in one line.
func TestErrorsSayWhatToDo(t *testing.T) {
	e := newCLIEnv(t, false)
	for _, args := range [][]string{{"build", "busybox"}, {"builds"}, {"logs", "x"}, {"wait", "x"}, {"cancel", "x"}} {
		wantErr(t, e.x(args...), exitUnavailable, "cannot reach the thinroot daemon at "+e.socket(), "(no socket there)",
			"thinroot serve", "systemctl start thinroot", "--socket or THINROOT_SOCKET")
	}
	r := e.x("init", "nosuch")
	wantErr(t, r, exitConfig, `no config "nosuch"`, "thinroot config list", "--ad-hoc")
	if n := strings.Count(r.err, "nosuch.cfg"); n != 1 {
		t.Errorf("the missing config's path appears %d times:\n%s", n, r.err)
	}
	wantErr(t, e.x("pool", "stats", "nosuch"), exitVolume, `no pool "nosuch"`, "init or pool create makes one")
}

// Finding 4: the exit statuses are distinct and every one is documented,
// in the man page and in `thinroot help exit-codes`.
func TestExitCodesDocumented(t *testing.T) {
	page := readManPage(t, "thinroot.1.md")
	_, section, _ := strings.Cut(page, "# EXIT STATUS")
	section, _, _ = strings.Cut(section, "\n# ")
	e := newCLIEnv(t, false)
	help := e.x("help", "exit-codes").out
	seen := map[int]bool{}
	for _, c := range exitCodes {
		if seen[c.code] {
			t.Errorf("exit status %d is used twice", c.code)
		}
		seen[c.code] = true
		code := itoa(c.code)
		if c.code == exitSignal {
			code = "128+N"
		}
		if !strings.Contains(section, "**"+code+"**") {
			t.Errorf("thinroot(1) EXIT STATUS does not list %s (%s)", code, c.name)
		}
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(code) + `\s+` + c.name + `:`).MatchString(help) {
			t.Errorf("help exit-codes does not list %s %s:\n%s", code, c.name, help)
		}
	}
	for _, m := range regexp.MustCompile(`\*\*(\d+)\*\*`).FindAllStringSubmatch(section, -1) {
		found := false
		for _, c := range exitCodes {
			found = found || itoa(c.code) == m[1]
		}
		if !found {
			t.Errorf("thinroot(1) documents exit status %s, which thinroot does not use", m[1])
		}
	}
	// mock's meanings where they match (mock/py/mockbuild/exception.py).
	for code, want := range map[int]int{exitUsage: 2, exitConfig: 3, exitInterrupted: 7, exitTimeout: 11, exitVolume: 25, exitBootstrap: 30} {
		if code != want {
			t.Errorf("exit status %d, want mock's %d", code, want)
		}
	}
}

// Finding 6: every command that lists or shows takes --json; config show
// --json stays mock's own view, --resolved --json is what the text shows.
func TestJSONEverywhere(t *testing.T) {
	for _, c := range commands {
		lists := strings.Contains(c.name, "list") || strings.Contains(c.name, "show") || strings.Contains(c.name, "stats") ||
			c.name == "builds" || c.name == "wait" || c.name == "version"
		if lists && !c.has(useJSON) {
			t.Errorf("thinroot %s lists or shows something but has no --json", c.name)
		}
	}
	e := newCLIEnv(t, false)
	raw := e.x("config", "show", "busybox", "--json")
	cfg, err := (&mockcfg.Loader{ConfigDir: e.configs}).Load("busybox")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := cfg.JSON()
	// Byte for byte, but for the uuid mock draws for every run.
	uuid := regexp.MustCompile(`"mock_run_uuid": "[^"]*"`)
	if raw.code != 0 || uuid.ReplaceAllString(raw.out, "") != uuid.ReplaceAllString(string(want)+"\n", "") {
		t.Errorf("config show --json is no longer mock's config as it was:\n%s", raw)
	}
	var resolved map[string]any
	r := e.x("config", "show", "busybox", "--resolved", "--json")
	if err := json.Unmarshal([]byte(r.out), &resolved); err != nil {
		t.Fatalf("config show --resolved --json: %v\n%s", err, r)
	}
	checkSnakeCase(t, "config show --resolved --json", resolved)
	text := e.x("config", "show", "busybox").out
	for k, v := range map[string]string{"root": "busybox", "pool": "mockbuild", "backend": "file", "uniqueext": "head", "filesystem": "ext4"} {
		if resolved[k] != v || !regexp.MustCompile(`(?m)^`+k+`:\s+`+v+`$`).MatchString(text) {
			t.Errorf("%s: json %v, text:\n%s", k, resolved[k], text)
		}
	}
	if resolved["size_bytes"] != float64(2<<30) {
		t.Errorf("size_bytes %v", resolved["size_bytes"])
	}
	for _, args := range [][]string{{"pool", "list", "--json"}, {"workdir", "list", "--json"}, {"config", "list", "--json"}} {
		r := e.x(args...)
		var v []any
		if err := json.Unmarshal([]byte(r.out), &v); err != nil || v == nil {
			t.Errorf("%v: want a JSON array, got %v\n%s", args, err, r)
		}
	}
	var ver map[string]any
	if err := json.Unmarshal([]byte(e.x("version", "--json").out), &ver); err != nil || ver["version"] == nil {
		t.Errorf("version --json: %v %v", ver, err)
	}
}

// checkSnakeCase checks every key of a decoded JSON value.
func checkSnakeCase(t *testing.T, what string, v any) {
	t.Helper()
	re := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			if !re.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", what, k)
			}
			checkSnakeCase(t, what, sub)
		}
	case []any:
		for _, sub := range x {
			checkSnakeCase(t, what, sub)
		}
	}
}

// Finding 8: groups have their own help, typos get a suggestion, help of
// nothing fails, -r works where mock has it, flags show only where they
// apply, and help is wrapped to the terminal.
func TestHelp(t *testing.T) {
	e := newCLIEnv(t, false)
	for _, g := range []string{"config", "pool", "workdir"} {
		r := e.x(g)
		if r.code != exitUsage || strings.Contains(r.err, "unknown command") || !strings.Contains(r.err, g+" needs a command") ||
			!strings.Contains(r.err, "Usage: thinroot "+g+" COMMAND") {
			t.Errorf("thinroot %s: %s", g, r)
		}
		for _, h := range [][]string{{g, "--help"}, {g, "-h"}, {"help", g}} {
			if r := e.x(h...); r.code != 0 || !strings.Contains(r.out, "Usage: thinroot "+g+" COMMAND") || !strings.Contains(r.out, "  list") {
				t.Errorf("thinroot %v: %s", h, r)
			}
		}
	}
	wantErr(t, e.x("biuld"), exitUsage, `unknown command "biuld"; did you mean "build"?`)
	wantErr(t, e.x("pool", "lsit"), exitUsage, `did you mean "pool list"?`)
	wantErr(t, e.x("help", "nosuch"), exitUsage, `no help for "nosuch"`)
	wantErr(t, e.x("build", "busybox", "--sorce", "x"), exitUsage, "unknown flag --sorce; did you mean --source?")
	wantErr(t, e.x("list-snapshots", "busybox", "--snapshot", "x"), exitUsage, "--snapshot does not apply here", "thinroot build")
	wantErr(t, e.x("snapshot", "busybox"), exitUsage, "missing NAME", "usage: thinroot snapshot [flags] CONFIG NAME")
	wantErr(t, e.x("version", "extra"), exitUsage, `unexpected argument "extra"`)
	if r := e.x(); r.code != exitUsage || !strings.Contains(r.err, "a command is needed") {
		t.Errorf("thinroot alone: %s", r)
	}
	// mock's -r, before or after the command.
	for _, args := range [][]string{{"-r", "busybox", "list-snapshots"}, {"list-snapshots", "-r", "busybox"}, {"list-snapshots", "--config", "busybox"}} {
		if r := e.x(args...); r.code != 0 || r.out != "Snapshots for busybox:\n" {
			t.Errorf("%v: %s", args, r)
		}
	}
	wantErr(t, e.x("-r", "busybox", "pool", "list"), exitUsage, "-r does not apply here")
	// Flags only where they apply: the ad hoc config's flags are one line
	// of a command's help, the pool thresholds only where pools are made.
	h := e.x("list-snapshots", "--help").out
	for _, f := range []string{"--size", "--bootstrap", "--pool-dir", "--warn-percent", "--socket"} {
		if strings.Contains(h, f+" ") {
			t.Errorf("list-snapshots --help shows %s:\n%s", f, h)
		}
	}
	if !strings.Contains(h, "-r, --config CONFIG") || !strings.Contains(h, "--json") || !strings.Contains(oneLine(h), "thinroot help ad-hoc") {
		t.Errorf("list-snapshots --help:\n%s", h)
	}
	if h := e.x("help", "ad-hoc").out; !strings.Contains(h, "--size SIZE") || !strings.Contains(h, "--bootstrap WORD") {
		t.Errorf("help ad-hoc:\n%s", h)
	}
	wantErr(t, e.x("--warn-percent", "80", "init", "busybox"), exitUsage, "--warn-percent is not a global flag", "thinroot init")
	// Wrapped to the terminal's width.
	for _, cols := range []string{"60", "80"} {
		for _, args := range [][]string{{"help"}, {"build", "--help"}, {"init", "--help"}, {"help", "exit-codes"}, {"help", "ad-hoc"}, {"pool"}} {
			r := e.exec([]string{"COLUMNS=" + cols}, args...)
			help := r.out
			if r.code != 0 {
				_, help, _ = strings.Cut(r.err, "\n") // after the one-line error
			}
			for _, l := range strings.Split(help, "\n") {
				if len(l) > atoi(cols) && strings.Contains(strings.TrimSpace(l), " ") {
					t.Errorf("COLUMNS=%s thinroot %v: a line of %d columns:\n%s", cols, args, len(l), l)
				}
			}
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// Finding 9: completion comes from the real state: the config dir given
// on the line, flag values, commands; the bash script itself works.
func TestCompletion(t *testing.T) {
	e := newCLIEnv(t, false)
	comp := func(words ...string) []string {
		t.Helper()
		r := e.x(append([]string{"__complete", itoa(len(words))}, words...)...)
		if r.code != 0 {
			t.Fatalf("__complete %v: %s", words, r)
		}
		out := strings.Fields(r.out)
		sort.Strings(out)
		return out
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "elsewhere.cfg"), []byte("config_opts['root'] = 'elsewhere'\n"), 0o644)
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"--config-dir", other, "build", ""}, "elsewhere"},
		{[]string{"build", ""}, "busybox debian-bookworm"},
		{[]string{"--log-level", ""}, "debug error info warn"},
		{[]string{"pool", "list", "--log-format", ""}, "json text"},
		{[]string{"init", "x", "--backend", ""}, "file lvm2"},
		{[]string{"pool", ""}, "create list remove stats"},
		{[]string{"bu"}, "build builds"},
		{[]string{"build", "--so"}, "--socket --source"},
		{[]string{"-r", "busybox", "build", "--time"}, "--timeout"},
		{[]string{"completion", ""}, "bash"},
		{[]string{"snapshot", "busybox", ""}, ""}, // a new name: nothing to offer
		{[]string{"build", "busybox", "--", ""}, "__files__"},
	} {
		got := strings.Join(comp(c.words...), " ")
		for _, w := range strings.Fields(c.want) {
			if !strings.Contains(" "+got+" ", " "+w+" ") {
				t.Errorf("%q: got %q, want %s in it", c.words, got, w)
			}
		}
		if c.want == "" && got != "" {
			t.Errorf("%q: got %q, want nothing", c.words, got)
		}
		if strings.Contains(got, "busybox") && !strings.Contains(c.want, "busybox") && c.want != "" {
			t.Errorf("%q offers config names: %q", c.words, got)
		}
	}
	// The script, as bash runs it.
	if _, err := exec.LookPath("bash"); err == nil {
		script := e.x("completion", "bash").out
		sh := script + "\nCOMP_WORDS=(thinroot --log-level ''); COMP_CWORD=2; _thinroot; echo \"${COMPREPLY[*]}\"\n" +
			"COMP_WORDS=(thinroot pool st); COMP_CWORD=2; _thinroot; echo \"${COMPREPLY[*]}\"\n"
		cmd := exec.Command("bash", "--norc", "-c", sh)
		cmd.Env = append(e.cmd().Env, "PATH="+filepath.Dir(e.bin)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "debug info warn error\nstats\n" {
			t.Errorf("the bash script: %v\n%s", err, out)
		}
	}
}

// A dead FUSE mount answers ENOTCONN, and ECONNABORTED while the kernel
// still aborts the requests that were in flight when its server died;
// serve and mount detach it either way. Only ENOTCONN was known, so a
// restart right after a kill failed ("file exists").
func TestDeadMountErrnos(t *testing.T) {
	for _, c := range []struct {
		err  error
		dead bool
	}{
		{unix.ENOTCONN, true}, {unix.ECONNABORTED, true}, {&os.PathError{Op: "statfs", Path: "/x", Err: unix.ECONNABORTED}, true},
		{unix.ENOENT, false}, {unix.EACCES, false}, {nil, false},
	} {
		if got := deadMount(c.err); got != c.dead {
			t.Errorf("deadMount(%v) = %v, want %v", c.err, got, c.dead)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"build", "builds", "init", "snapshot", "list-snapshots", "remove-snapshot"}
	for word, want := range map[string]string{"biuld": "build", "bulid": "build", "int": "init", "snapshto": "snapshot",
		"list-snapshot": "list-snapshots", "xyzzy": "", "remove": "remove-snapshot"} {
		if got := suggest(word, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

func readManPage(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lvmtest.RepoRoot(t), "man", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
