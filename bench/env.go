package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/loop"
	"github.com/thinroot/thinroot/internal/mount"
)

// env is one benchmark run: where things are and what to undo at the end.
type env struct {
	ctx      context.Context
	repo     string // the source tree (testdata, go test)
	scratch  string // everything the run makes lives under here
	thinroot string // the thinroot binary under test
	self     string // this program, for the genroot bootstrap
	busybox  string // testdata/bootstrap/busybox.sh
	logsDir  string // where daemons' logs are copied at the end ("": nowhere)
	bg       []*bgProc
	logf     func(format string, args ...any)
	// rpmReps are benchmark 6's repetitions: warm builds, C builds, cold
	// builds, runs of 8 at once.
	rpmReps [4]int
}

// run runs a command to completion; on failure the error carries the
// command line and the tail of its output.
func (e *env) run(extraEnv []string, name string, args ...string) error {
	_, err := e.output(extraEnv, name, args...)
	return err
}

// output runs a command and returns its standard output.
func (e *env) output(extraEnv []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(e.ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Dir = "/"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(errb.String()+out.String(), 600))
	}
	return out.Bytes(), nil
}

// timed runs a command with its output thrown away and returns how long
// it took from fork to exit.
func (e *env) timed(name string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(e.ctx, name, args...)
	cmd.Dir = "/"
	var errb bytes.Buffer
	cmd.Stderr = &errb
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd.Stdout = devnull
	t0 := time.Now()
	err = cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(errb.String(), 600))
	}
	return d, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// defaultVolume is the --size every config gets: thinroot's default
// volume size, what a user who does not choose gets.
const defaultVolume = "8G"

// world is one thinroot installation: its own state directory, mock
// basedir, pool and tree mount point, so benchmarks do not see each
// other's volumes.
type world struct {
	name     string
	dir      string
	state    string
	basedir  string
	mnt      string
	pool     string
	size     string   // --size of its configs
	backend  string   // the pool's backend ("" for thinroot's default, file)
	configs  []string // every config it made, to scrub at the end
	poolMade bool
	// extraEnv is added to every thinroot command of the world (a config
	// dir, a cache dir).
	extraEnv []string
}

func (e *env) newWorld(name, pool, poolSize, volSize string) (*world, error) {
	return e.newWorldOn("", name, pool, poolSize, volSize)
}

// newWorldOn is newWorld with its pool on the given backend.
func (e *env) newWorldOn(backend, name, pool, poolSize, volSize string) (*world, error) {
	w := &world{name: name, dir: filepath.Join(e.scratch, name), pool: pool, size: volSize, backend: backend}
	w.state = filepath.Join(w.dir, "state")
	w.basedir = filepath.Join(w.dir, "mock")
	w.mnt = filepath.Join(w.dir, "tree")
	for _, d := range []string{w.state, w.basedir, w.mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	create := []string{"pool", "create", pool, "--size", poolSize}
	if backend != "" {
		create = append(create, "--backend", backend)
	}
	if err := e.tr(w, create...); err != nil {
		return nil, fmt.Errorf("world %s: %w", name, err)
	}
	w.poolMade = true
	return w, nil
}

func (w *world) env() []string {
	return append([]string{"THINROOT_STATE_DIR=" + w.state, "THINROOT_BASEDIR=" + w.basedir, "THINROOT_LOG_LEVEL=warn"}, w.extraEnv...)
}

// tr runs the thinroot CLI in a world.
func (e *env) tr(w *world, args ...string) error {
	return e.run(w.env(), e.thinroot, args...)
}

// configArgs are the flags that define a config on the command line.
func (w *world) configArgs() []string {
	args := []string{"--pool", w.pool, "--size", w.size}
	if w.backend != "" {
		args = append(args, "--backend", w.backend)
	}
	return args
}

// initConfig bootstraps a config of the world with argv and returns how
// long it took.
func (e *env) initConfig(w *world, root string, argv ...string) (time.Duration, error) {
	w.configs = append(w.configs, root)
	args := append([]string{"init", root}, w.configArgs()...)
	args = append(append(args, "--"), argv...)
	t0 := time.Now()
	err := e.tr(w, args...)
	return time.Since(t0), err
}

// bgProc is a thinroot process left running (mount, serve).
type bgProc struct {
	what string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// start starts a long-running thinroot command in a world, its output
// going to a log file in the world, and waits until ready says so.
func (e *env) start(w *world, what string, ready func() bool, args ...string) (*bgProc, error) {
	logPath := filepath.Join(w.dir, what+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.thinroot, args...)
	cmd.Env = append(os.Environ(), w.env()...)
	cmd.Env = append(cmd.Env, "THINROOT_LOG_LEVEL=info")
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start thinroot %s: %w", what, err)
	}
	p := &bgProc{what: what, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	e.bg = append(e.bg, p)
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		select {
		case <-p.done:
			return nil, fmt.Errorf("thinroot %s exited before it was ready (%v): %s", what, p.err, tail(readFile(logPath), 800))
		case <-e.ctx.Done():
			return nil, e.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("thinroot %s not ready after 60s: %s", what, tail(readFile(logPath), 800))
		}
	}
	return p, nil
}

// stop asks the process to finish (SIGTERM: it unmounts its tree) and
// kills it if it has not after 20 s.
func (p *bgProc) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("thinroot %s did not stop on SIGTERM; killed", p.what)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// isFUSE tells whether a FUSE filesystem answers at dir.
func isFUSE(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == 0x65735546
}

// mountTree mounts the world's tree with its configs registered.
func (e *env) mountTree(w *world, extra ...string) (*bgProc, error) {
	return e.mountTreeAt(w, w.mnt, "tree", extra...)
}

// mountTreeAt mounts another tree of w's configs at mnt (its log is
// <what>.log), with extra flags.
func (e *env) mountTreeAt(w *world, mnt, what string, extra ...string) (*bgProc, error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	args := []string{"mount", mnt}
	for _, c := range w.configs {
		args = append(args, "--config", c)
	}
	args = append(args, w.configArgs()...)
	args = append(args, extra...)
	return e.start(w, what, func() bool { return isFUSE(mnt) }, args...)
}

// mountTable is the set of mount points now.
func mountTable() map[string]bool {
	out := map[string]bool{}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			out[strings.ReplaceAll(f[4], "\\040", " ")] = true
		}
	}
	return out
}

// sync flushes every filesystem twice: the second pass writes what the
// first pushed into loop devices' backing files.
func syncAll() {
	unix.Sync()
	unix.Sync()
}

// syncfs flushes the filesystems holding each path, in order: a copy's
// own filesystem first, then the one under it (a loop device's backing
// file lives there), so statfs of the latter sees every block written.
func syncfs(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = unix.Syncfs(int(f.Fd()))
		f.Close()
		if err != nil {
			return fmt.Errorf("syncfs %s: %w", p, err)
		}
	}
	return nil
}

// usedBytes is the space a filesystem reports in use (statfs: blocks
// minus those available to users), the figure thinroot's stats give.
func usedBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks-st.Bavail) * int64(st.Bsize), nil
}

// scratchFS is an ext4 filesystem in a sparse image file, loop-mounted,
// where the alternatives to thinroot work: their space is then measured
// with statfs exactly like the pool's, undisturbed by anything else on
// the host disk, and their I/O goes through the same loop layer.
func (e *env) scratchFS(name string, size int64) (string, error) {
	img := filepath.Join(e.scratch, name+".img")
	dir := filepath.Join(e.scratch, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return "", err
	}
	// Like thinroot's own volumes: inode tables are taken as zeroed, so
	// no background zeroing writes while the benchmark runs.
	if err := e.run(nil, "mkfs.ext4", "-q", "-F", "-E", "assume_storage_prezeroed=1", img); err != nil {
		if err := e.run(nil, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img); err != nil {
			return "", err
		}
	}
	dev, err := loop.Attach(img, false)
	if err != nil {
		return "", err
	}
	defer dev.Close()
	if err := mount.Device(dev.Path, dir, "ext4", ""); err != nil {
		return "", err
	}
	return dir, nil
}

// sweep unmounts everything under the scratch directory (deepest first),
// detaches loop devices backed by files in it and removes it. It is the
// last line of cleanup: it works from the mount table and sysfs, not from
// what this run remembers, so it also clears what a killed run left.
func sweep(scratch string, logf func(string, ...any)) error {
	scratch = filepath.Clean(scratch)
	if scratch == "/" || scratch == "" {
		return errors.New("refusing to sweep /")
	}
	var errs []error
	for pass := 0; pass < 3; pass++ {
		mps := mountsUnder(scratch)
		if len(mps) == 0 {
			break
		}
		for _, mp := range mps {
			if err := unix.Unmount(mp, 0); err != nil {
				if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && pass == 2 {
					errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
				}
			}
		}
	}
	for _, dev := range loopsUnder(scratch) {
		logf("detaching %s", dev)
		if f, err := os.OpenFile(dev, os.O_RDWR, 0); err == nil {
			if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
				errs = append(errs, fmt.Errorf("detach %s: %w", dev, err))
			}
			f.Close()
		}
	}
	if left := mountsUnder(scratch); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still mounted under %s: %s; not removing it", scratch, strings.Join(left, " ")))
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(scratch); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountsUnder lists mount points inside dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, dir+"/") || mp == dir {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ci, cj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if ci != cj {
			return ci > cj
		}
		return out[i] > out[j]
	})
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// loopsUnder lists loop devices whose backing file is inside dir.
func loopsUnder(dir string) []string {
	ms, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, m := range ms {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		bf := strings.TrimSpace(string(b))
		if strings.HasPrefix(bf, dir+"/") {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(m))))
		}
	}
	return out
}

// discard is an io.Writer sink for commands whose output is not needed.
var discard io.Writer = io.Discard

// treeOps reads the durations the tree logged for its operations of kind
// op ("create workdir", "remove workdir"), by config and ext: what the
// daemon itself spent, without the FUSE round trip and the client process.
func treeOps(logPath, op string) (map[string]time.Duration, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	field := func(line, key string) string {
		i := strings.Index(line, " "+key+"=")
		if i < 0 {
			return ""
		}
		v := line[i+len(key)+2:]
		if strings.HasPrefix(v, `"`) {
			if j := strings.Index(v[1:], `"`); j >= 0 {
				return v[1 : j+1]
			}
			return ""
		}
		if j := strings.IndexByte(v, ' '); j >= 0 {
			v = v[:j]
		}
		return v
	}
	out := map[string]time.Duration{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if field(line, "msg") != "tree operation" || field(line, "op") != op {
			continue
		}
		d, err := time.ParseDuration(field(line, "took"))
		if err != nil {
			continue
		}
		out[field(line, "config")+"."+field(line, "ext")] = d
	}
	return out, sc.Err()
}
