// Package cgroup puts a build, a bootstrap or a shell in a control group
// of its own, with limits on memory, CPU and the number of processes, and
// reads back what it used. It speaks to the kernel's cgroup file system
// directly, version 2 (the unified hierarchy, where /sys/fs/cgroup is
// cgroup2) and version 1 (one hierarchy per controller), since it needs
// only three controllers and a few files of each, and the processes it
// limits join their group themselves before they run anything (Procs).
//
// Groups live under a parent of the caller's own cgroup (with systemd,
// the service's, which the unit delegates), so whatever limits the
// daemon's own group has also bound its builds:
//
//	v2: <own>/thinroot/<name>     (the daemon moves to <own>/daemon first
//	                               when <own> must hand out controllers)
//	v1: <controller mount>/<own path of that controller>/thinroot/<name>
package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound one group. Zero means no limit.
type Limits struct {
	MemoryMax int64   `json:"memory_max,omitempty"` // bytes
	PidsMax   int64   `json:"pids_max,omitempty"`   // processes and threads
	CPUs      float64 `json:"cpus,omitempty"`       // CPU time per wall second
}

// IsZero tells whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// Over returns l with every limit that o sets replaced by o's.
func (l Limits) Over(o Limits) Limits {
	if o.MemoryMax != 0 {
		l.MemoryMax = o.MemoryMax
	}
	if o.PidsMax != 0 {
		l.PidsMax = o.PidsMax
	}
	if o.CPUs != 0 {
		l.CPUs = o.CPUs
	}
	return l
}

// Check refuses negative limits and a CPU limit too small to schedule.
func (l Limits) Check() error {
	switch {
	case l.MemoryMax < 0:
		return fmt.Errorf("memory_max %d is negative (0 means no limit)", l.MemoryMax)
	case l.MemoryMax > 0 && l.MemoryMax < 4<<20:
		return fmt.Errorf("memory_max %d is below 4 MiB; nothing would start", l.MemoryMax)
	case l.PidsMax < 0:
		return fmt.Errorf("pids_max %d is negative (0 means no limit)", l.PidsMax)
	case l.CPUs < 0:
		return fmt.Errorf("cpus %g is negative (0 means no limit)", l.CPUs)
	case l.CPUs > 0 && l.CPUs < 0.01:
		return fmt.Errorf("cpus %g is below 0.01", l.CPUs)
	}
	return nil
}

// Usage is what a group used over its life.
type Usage struct {
	MemoryPeak int64   `json:"memory_peak"` // bytes
	CPUSeconds float64 `json:"cpu_seconds"`
	PidsPeak   int64   `json:"pids_peak"`
	// OOMKills counts processes the kernel killed for the memory limit.
	OOMKills int64 `json:"oom_kills,omitempty"`
	// PidsRefused counts forks refused by the pids limit.
	PidsRefused int64 `json:"pids_refused,omitempty"`
}

// The controllers a group uses; v1 also reads cpuacct and uses freezer
// to stop a group whole before killing it.
var (
	v2Controllers = []string{"memory", "pids", "cpu"}
	v1Controllers = []string{"memory", "pids", "cpu", "cpuacct", "freezer"}
)

// Manager makes groups under one parent.
type Manager struct {
	v2 bool
	// dirs is the parent directory per controller (v1), or under "" the
	// one directory (v2).
	dirs map[string]string
}

// Root is where the cgroup file systems are mounted.
var Root = "/sys/fs/cgroup"

// Open finds the host's cgroup version and prepares the parent, named
// name (default "thinroot"), under the caller's own cgroup. It fails,
// saying what is missing, when there are no cgroups to use: not root, no
// controllers, a v2 tree that was not delegated.
func Open(name string) (*Manager, error) {
	if name == "" {
		name = "thinroot"
	}
	if strings.Contains(name, "..") {
		return nil, fmt.Errorf("cgroup parent %q must not contain ..", name)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(Root, &fs); err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w (mount the cgroup file system there)", Root, err)
	}
	own, err := ownPaths()
	if err != nil {
		return nil, err
	}
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		return openV2(filepath.Join(Root, own[""]), name)
	}
	return openV1(own, name)
}

// Unified tells whether the host's cgroups are v2 (the unified hierarchy
// on Root).
func Unified() bool {
	var fs unix.Statfs_t
	return unix.Statfs(Root, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC
}

// Version is 1 or 2.
func (m *Manager) Version() int {
	if m.v2 {
		return 2
	}
	return 1
}

// ownPaths reads /proc/self/cgroup: controller (v1) or "" (v2) to path.
func ownPaths() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

func openV1(own map[string]string, name string) (*Manager, error) {
	m := &Manager{dirs: map[string]string{}}
	for _, c := range v1Controllers {
		p, ok := own[c]
		if !ok {
			continue
		}
		mnt := filepath.Join(Root, c)
		if _, err := os.Stat(filepath.Join(mnt, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(mnt, p, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroups: make %s: %w (the daemon must run as root)", dir, err)
		}
		m.dirs[c] = dir
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if m.dirs[c] == "" {
			return nil, fmt.Errorf("cgroups: the %s controller is not mounted under %s (mount it, or boot with cgroup v2)", c, Root)
		}
	}
	return m, nil
}

func openV2(own, name string) (*Manager, error) {
	ctrls, err := os.ReadFile(filepath.Join(own, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	have := strings.Fields(string(ctrls))
	for _, c := range v2Controllers {
		if !contains(have, c) {
			return nil, fmt.Errorf("cgroups: the %s controller is not available in %s (delegate it: Delegate=yes in the unit)", c, own)
		}
	}
	enable := "+memory +pids +cpu"
	if err := writeFile(filepath.Join(own, "cgroup.subtree_control"), enable); err != nil {
		if !errors.Is(err, syscall.EBUSY) {
			return nil, fmt.Errorf("cgroups: enable controllers in %s: %w", own, err)
		}
		// No internal processes: the caller's processes move to a leaf
		// of their own, so that their group can hand out controllers.
		leaf := filepath.Join(own, "daemon")
		if err := os.MkdirAll(leaf, 0o755); err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
		for _, pid := range readPids(filepath.Join(own, "cgroup.procs")) {
			writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(pid))
		}
		if err := writeFile(filepath.Join(own, "cgroup.subtree_control"), enable); err != nil {
			return nil, fmt.Errorf("cgroups: enable controllers in %s: %w", own, err)
		}
	}
	dir := filepath.Join(own, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), enable); err != nil {
		return nil, fmt.Errorf("cgroups: enable controllers in %s: %w", dir, err)
	}
	return &Manager{v2: true, dirs: map[string]string{"": dir}}, nil
}

// Remove removes the parent; it fails while a group is left in it.
func (m *Manager) Remove() error {
	var errs []error
	for _, d := range m.dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Groups lists the names of the groups under the parent.
func (m *Manager) Groups() []string {
	var out []string
	for _, d := range m.dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() && !contains(out, e.Name()) {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// Group is one build's control group.
type Group struct {
	Name   string
	Limits Limits
	v2     bool
	dirs   map[string]string
}

// New makes a group with limits. A group left by an earlier process
// under the same name is emptied and reused.
func (m *Manager) New(name string, l Limits) (*Group, error) {
	if err := l.Check(); err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("cgroup name %q must be plain", name)
	}
	g := &Group{Name: name, Limits: l, v2: m.v2, dirs: map[string]string{}}
	for c, d := range m.dirs {
		dir := filepath.Join(d, name)
		if err := mkdirUnder(d, dir); err != nil {
			g.Remove(context.Background())
			return nil, fmt.Errorf("cgroups: make %s: %w", dir, err)
		}
		g.dirs[c] = dir
	}
	if err := g.apply(); err != nil {
		g.Remove(context.Background())
		return nil, fmt.Errorf("cgroups: limits of %s: %w", name, err)
	}
	return g, nil
}

// mkdirUnder makes dir in parent, making the parent again if it is gone:
// daemons share the parent, and one that stops removes it when it is
// empty, which may be just before another's next build.
func mkdirUnder(parent, dir string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		if err = os.Mkdir(dir, 0o755); err == nil || os.IsExist(err) {
			return nil
		}
		if !os.IsNotExist(err) {
			return err
		}
	}
	return err
}

// Load opens an existing group by name, as it is, to read or remove it.
func (m *Manager) Load(name string) (*Group, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("cgroup name %q must be plain", name)
	}
	g := &Group{Name: name, v2: m.v2, dirs: map[string]string{}}
	for c, d := range m.dirs {
		dir := filepath.Join(d, name)
		if _, err := os.Stat(dir); err == nil {
			g.dirs[c] = dir
		}
	}
	if len(g.dirs) == 0 {
		return nil, fmt.Errorf("no cgroup %s: %w", name, os.ErrNotExist)
	}
	return g, nil
}

func (g *Group) dir(c string) string {
	if g.v2 {
		return g.dirs[""]
	}
	return g.dirs[c]
}

func (g *Group) apply() error {
	l := g.Limits
	const period = 100000
	if g.v2 {
		d := g.dirs[""]
		mem, pids, cpu := "max", "max", "max "+strconv.Itoa(period)
		if l.MemoryMax > 0 {
			mem = strconv.FormatInt(l.MemoryMax, 10)
		}
		if l.PidsMax > 0 {
			pids = strconv.FormatInt(l.PidsMax, 10)
		}
		if l.CPUs > 0 {
			cpu = fmt.Sprintf("%d %d", int64(l.CPUs*period), period)
		}
		if err := writeFile(filepath.Join(d, "memory.max"), mem); err != nil {
			return err
		}
		if l.MemoryMax > 0 {
			// A limit is a limit: no swapping past it.
			writeFile(filepath.Join(d, "memory.swap.max"), "0")
			// Kill the whole build when one of its processes is killed,
			// as a half-killed build only wastes time.
			writeFile(filepath.Join(d, "memory.oom.group"), "1")
		}
		if err := writeFile(filepath.Join(d, "pids.max"), pids); err != nil {
			return err
		}
		return writeFile(filepath.Join(d, "cpu.max"), cpu)
	}
	mem := "-1"
	if l.MemoryMax > 0 {
		mem = strconv.FormatInt(l.MemoryMax, 10)
	}
	if err := writeFile(filepath.Join(g.dirs["memory"], "memory.limit_in_bytes"), mem); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(g.dirs["memory"], "memory.memsw.limit_in_bytes")); err == nil {
		if err := writeFile(filepath.Join(g.dirs["memory"], "memory.memsw.limit_in_bytes"), mem); err != nil {
			return err
		}
	}
	pids := "max"
	if l.PidsMax > 0 {
		pids = strconv.FormatInt(l.PidsMax, 10)
	}
	if err := writeFile(filepath.Join(g.dirs["pids"], "pids.max"), pids); err != nil {
		return err
	}
	quota := "-1"
	if l.CPUs > 0 {
		quota = strconv.FormatInt(int64(l.CPUs*period), 10)
	}
	if err := writeFile(filepath.Join(g.dirs["cpu"], "cpu.cfs_period_us"), strconv.Itoa(period)); err != nil {
		return err
	}
	return writeFile(filepath.Join(g.dirs["cpu"], "cpu.cfs_quota_us"), quota)
}

// Procs lists the cgroup.procs files a process writes "0" to, to join
// the group: one per hierarchy.
func (g *Group) Procs() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// Join moves the calling process into every procs file.
func Join(procs []string) error {
	for _, p := range procs {
		if err := writeFile(p, "0"); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(p), err)
		}
	}
	return nil
}

// Add moves a process into the group.
func (g *Group) Add(pid int) error {
	for _, p := range g.Procs() {
		if err := writeFile(p, strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add %d to cgroup %s: %w", pid, filepath.Dir(p), err)
		}
	}
	return nil
}

// FD opens the group's directory for clone3's CLONE_INTO_CGROUP
// (syscall.SysProcAttr.UseCgroupFD): on v2 only.
func (g *Group) FD() (int, bool) {
	if !g.v2 {
		return -1, false
	}
	fd, err := syscall.Open(g.dirs[""], syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	return fd, err == nil
}

// Dir is the group's directory on v2, its pids directory on v1.
func (g *Group) Dir() string { return g.dir("pids") }

// Pids lists the processes in the group.
func (g *Group) Pids() []int { return readPids(filepath.Join(g.dir("pids"), "cgroup.procs")) }

// Kill kills every process in the group and waits, until ctx ends, for
// the group to be empty. A process cannot escape by forking: the group
// is frozen (or, on v2, killed by the kernel at once) first.
func (g *Group) Kill(ctx context.Context) error {
	if g.v2 {
		if err := writeFile(filepath.Join(g.dirs[""], "cgroup.kill"), "1"); err == nil {
			return g.waitEmpty(ctx)
		}
	}
	for {
		pids := g.Pids()
		if len(pids) == 0 {
			return nil
		}
		g.freeze(true)
		for _, pid := range g.Pids() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		g.freeze(false)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s still has processes %v: %w", g.Name, g.Pids(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (g *Group) freeze(on bool) {
	if g.v2 {
		v := "0"
		if on {
			v = "1"
		}
		writeFile(filepath.Join(g.dirs[""], "cgroup.freeze"), v)
		return
	}
	if d := g.dirs["freezer"]; d != "" {
		v := "THAWED"
		if on {
			v = "FROZEN"
		}
		writeFile(filepath.Join(d, "freezer.state"), v)
	}
}

func (g *Group) waitEmpty(ctx context.Context) error {
	for len(g.Pids()) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s still has processes %v: %w", g.Name, g.Pids(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Usage reads what the group has used so far.
func (g *Group) Usage() Usage {
	var u Usage
	if g.v2 {
		d := g.dirs[""]
		u.MemoryPeak = readInt(filepath.Join(d, "memory.peak"))
		if u.MemoryPeak == 0 {
			u.MemoryPeak = readInt(filepath.Join(d, "memory.current"))
		}
		u.CPUSeconds = float64(readKey(filepath.Join(d, "cpu.stat"), "usage_usec")) / 1e6
		u.PidsPeak = readInt(filepath.Join(d, "pids.peak"))
		u.OOMKills = readKey(filepath.Join(d, "memory.events"), "oom_kill")
		u.PidsRefused = readKey(filepath.Join(d, "pids.events"), "max")
		return u
	}
	u.MemoryPeak = readInt(filepath.Join(g.dirs["memory"], "memory.max_usage_in_bytes"))
	u.OOMKills = readKey(filepath.Join(g.dirs["memory"], "memory.oom_control"), "oom_kill")
	u.PidsPeak = readInt(filepath.Join(g.dirs["pids"], "pids.peak"))
	u.PidsRefused = readKey(filepath.Join(g.dirs["pids"], "pids.events"), "max")
	if d := g.dirs["cpuacct"]; d != "" {
		u.CPUSeconds = float64(readInt(filepath.Join(d, "cpuacct.usage"))) / 1e9
	} else {
		u.CPUSeconds = float64(readKey(filepath.Join(g.dirs["cpu"], "cpu.stat"), "usage_usec")) / 1e6
	}
	return u
}

// Remove kills what is left in the group and removes it.
func (g *Group) Remove(ctx context.Context) error {
	var errs []error
	if err := g.Kill(ctx); err != nil {
		errs = append(errs, err)
	}
	g.freeze(false)
	for _, d := range g.dirs {
		for i := 0; ; i++ {
			err := os.Remove(d)
			if err == nil || os.IsNotExist(err) {
				break
			}
			// An exiting process leaves the group a moment after its
			// last thread is gone.
			if !errors.Is(err, syscall.EBUSY) || i >= 100 || ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

type ctxKey struct{}

// WithGroup returns a context whose sandboxed commands join g.
func WithGroup(ctx context.Context, g *Group) context.Context {
	return context.WithValue(ctx, ctxKey{}, g)
}

// FromContext returns the group of ctx, or nil.
func FromContext(ctx context.Context) *Group {
	g, _ := ctx.Value(ctxKey{}).(*Group)
	return g
}

func writeFile(p, v string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readInt(p string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// readKey reads "key value" from a flat keyed file (cpu.stat,
// memory.events, memory.oom_control, pids.events).
func readKey(p, key string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	return parseKey(string(b), key)
}

func parseKey(s, key string) int64 {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func readPids(p string) []int {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testPrefix names the parents tests make (TestParent), which
// SweepTestParents removes.
const testPrefix = "thinroot-test-"

var testParents int

// TestParent names a parent for a test of this process (test support).
func TestParent() string {
	testParents++
	return fmt.Sprintf("%s%d-%d", testPrefix, os.Getpid(), testParents)
}

// MountV2ForTest mounts cgroup2 on Root when the test VM (THINROOT_VM=1),
// whose kernel mounts no cgroup file system, has none there, and returns
// what undoes it (test support: cgroup v2 is tested in the VM).
func MountV2ForTest() (func(), error) {
	var fs unix.Statfs_t
	if os.Getenv("THINROOT_VM") != "1" || (unix.Statfs(Root, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC) {
		return func() {}, nil
	}
	if err := unix.Mount("none", Root, "cgroup2", 0, ""); err != nil {
		return nil, fmt.Errorf("mount cgroup2 on %s: %w", Root, err)
	}
	return func() { unix.Unmount(Root, unix.MNT_DETACH) }, nil
}

// SweepTestParents kills and removes what the tests of this process left
// under their parents (TestParent), and returns what it found (test
// support: testguard runs it after a package's tests).
func SweepTestParents() []string {
	if os.Geteuid() != 0 {
		return nil
	}
	own, err := ownPaths()
	if err != nil {
		return nil
	}
	var tops []string
	var fs unix.Statfs_t
	if unix.Statfs(Root, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
		tops = append(tops, filepath.Join(Root, own[""]))
	} else {
		for _, c := range v1Controllers {
			if p, ok := own[c]; ok {
				tops = append(tops, filepath.Join(Root, c, p))
			}
		}
	}
	prefix := fmt.Sprintf("%s%d-", testPrefix, os.Getpid())
	var left []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, top := range tops {
		parents, _ := filepath.Glob(filepath.Join(top, prefix+"*"))
		for _, p := range parents {
			kids, _ := os.ReadDir(p)
			for _, k := range kids {
				if !k.IsDir() {
					continue
				}
				d := filepath.Join(p, k.Name())
				left = append(left, d)
				// Killed one hierarchy at a time: each lists the same
				// processes, so the first empties the others.
				g := &Group{Name: k.Name(), dirs: map[string]string{"pids": d}}
				g.Remove(ctx)
			}
			os.Remove(p)
		}
	}
	return left
}
