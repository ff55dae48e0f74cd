package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Benchmark 1: a fresh buildroot, ready to chroot, four ways, for roots of
// several sizes. Benchmark 2 (space) works in the same world.

// Approaches, in the order tables and the chart show them.
var readyApproaches = []struct{ id, label string }{
	{"thinroot", "thinroot: mkdir in the tree, no spare"},
	{"thinroot-spare", "thinroot: mkdir in the tree, a warm spare ready"},
	{"thinroot-btrfs", "thinroot, btrfs backend: mkdir in the tree"},
	{"untar", "untar the root cache (tar.gz)"},
	{"cp", "cp -a"},
	{"overlay", "overlayfs mount"},
}

// mainWorld is the world of benchmarks 1 and 2: one pool with a config
// per root size, the alternatives' ext4 scratch filesystem beside it.
type mainWorld struct {
	w     *world
	alt   string // the alternatives' filesystem
	roots map[int]*rootInfo
	tree  *bgProc
	// spareTree is a second tree on the same world that keeps a warm
	// spare per config (the other trees keep none).
	spareTree *bgProc
	spareMnt  string
	// btrfs is the same configs on a btrfs pool (benchmark 1 only), with
	// its own tree.
	btrfs     *world
	btrfsTree *bgProc
	compress  string // program the root cache is (de)compressed with
	// templateBytes is the space each root takes on alt, by size.
	templateBytes map[int]int64
}

func configFor(mb int) string { return fmt.Sprintf("synth-%dm", mb) }

// setupMain makes the pool, bootstraps a config per root size with the
// synthetic root, and makes the alternatives' copy of each root and its
// tar.gz, as mock's root_cache plugin makes it. With withBtrfs the same
// configs are bootstrapped on a btrfs pool too.
func (e *env) setupMain(sizes []int, withBtrfs bool) (*mainWorld, error) {
	largest := 0
	for _, mb := range sizes {
		largest = max(largest, mb)
	}
	// Volumes get thinroot's default size (8 GiB); the pool and the
	// scratch filesystem hold every root, 16 workdirs and the copies.
	w, err := e.newWorld("main", "bench", "24G", defaultVolume)
	if err != nil {
		return nil, err
	}
	mw := &mainWorld{w: w, roots: map[int]*rootInfo{}, templateBytes: map[int]int64{}, compress: "gzip"}
	if _, err := os.Stat("/bin/pigz"); err == nil {
		mw.compress = "pigz" // mock's default, used when /bin/pigz exists
	}
	altSize := int64(8<<30) + int64(largest)<<20*4 + int64(sizes[len(sizes)/2])<<20*20
	if mw.alt, err = e.scratchFS("alt", altSize); err != nil {
		return nil, fmt.Errorf("alternatives' filesystem: %w", err)
	}
	for _, mb := range sizes {
		cfg := configFor(mb)
		ri := &rootInfo{Config: cfg}
		statsPath := filepath.Join(w.dir, "root-"+strconv.Itoa(mb)+".json")
		e.logf("bootstrapping %s: thinroot init with the synthetic %d MiB root", cfg, mb)
		d, err := e.initConfig(w, cfg, e.self, "genroot", "--mb", strconv.Itoa(mb),
			"--busybox-script", e.busybox, "--stats", statsPath)
		if err != nil {
			return mw, err
		}
		ri.InitSeconds = round(d.Seconds(), 3)
		if err := readJSON(statsPath, &ri.rootStats); err != nil {
			return mw, err
		}
		img := filepath.Join(w.state, "pools", w.pool, "volumes", "mock."+cfg+".postinit.img")
		var st syscall.Stat_t
		if err := syscall.Stat(img, &st); err != nil {
			return mw, fmt.Errorf("postinit image of %s: %w", cfg, err)
		}
		ri.SnapshotBytes = st.Blocks * 512

		e.logf("making the alternatives' copy of the %d MiB root and its root cache", mb)
		syncAll()
		before, err := usedBytes(mw.alt)
		if err != nil {
			return mw, err
		}
		tdir := mw.template(mb)
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			return mw, err
		}
		if err := e.run([]string{"ROOT=" + tdir}, e.self, "genroot", "--mb", strconv.Itoa(mb), "--busybox-script", e.busybox); err != nil {
			return mw, err
		}
		syncAll()
		after, err := usedBytes(mw.alt)
		if err != nil {
			return mw, err
		}
		mw.templateBytes[mb] = after - before
		// mock's root_cache plugin: tar --one-file-system --exclude-caches
		// --exclude-caches-under --use-compress-program pigz -cf FILE -C ROOT .
		t0 := time.Now()
		if err := e.run(nil, "tar", "--one-file-system", "--exclude-caches", "--exclude-caches-under",
			"--use-compress-program", mw.compress, "-cf", mw.tarball(mb), "-C", tdir, "."); err != nil {
			return mw, err
		}
		ri.TarSeconds = round(time.Since(t0).Seconds(), 3)
		if fi, err := os.Stat(mw.tarball(mb)); err == nil {
			ri.TarballBytes = fi.Size()
			ri.Compression = round(float64(ri.Bytes)/float64(fi.Size()), 3)
		}
		mw.roots[mb] = ri
	}
	syncAll()
	e.logf("mounting the tree")
	if mw.tree, err = e.mountTree(w, "--spares", "0"); err != nil {
		return mw, err
	}
	e.logf("mounting a second tree that keeps warm spares")
	mw.spareMnt = filepath.Join(w.dir, "tree-spares")
	if mw.spareTree, err = e.mountTreeAt(w, mw.spareMnt, "tree-spares", "--spares", "1"); err != nil {
		return mw, err
	}
	// One workdir of each config through it, so it keeps a spare of each.
	for _, mb := range sizes {
		dir := filepath.Join(mw.spareSnapDir(mb), "warmup")
		if err := e.run(nil, "mkdir", dir); err != nil {
			return mw, err
		}
		if err := e.run(nil, "rmdir", dir); err != nil {
			return mw, err
		}
	}
	if withBtrfs {
		if err := e.setupBtrfs(mw, sizes); err != nil {
			return mw, fmt.Errorf("btrfs world: %w", err)
		}
	}
	return mw, nil
}

// setupBtrfs bootstraps the configs of the main world again on a btrfs
// pool (an image of the same size) and mounts its tree.
func (e *env) setupBtrfs(mw *mainWorld, sizes []int) error {
	w, err := e.newWorldOn("btrfs", "main-btrfs", "bench", "24G", defaultVolume)
	if err != nil {
		return err
	}
	mw.btrfs = w
	for _, mb := range sizes {
		e.logf("bootstrapping %s on btrfs", configFor(mb))
		if _, err := e.initConfig(w, configFor(mb), e.self, "genroot", "--mb", strconv.Itoa(mb),
			"--busybox-script", e.busybox); err != nil {
			return err
		}
	}
	syncAll()
	mw.btrfsTree, err = e.mountTree(w, "--spares", "0")
	return err
}

// readyExt is the unique-ext of a repetition's workdir. The two trees of
// the main world share its configs, so each approach has names of its
// own: a name one tree just removed may still be in the other's picture.
func readyExt(approach string, rep int) string {
	if approach == "thinroot-spare" {
		return fmt.Sprintf("s%02d", rep)
	}
	return fmt.Sprintf("r%02d", rep)
}

// spareSnapDir is snapDir in the tree that keeps spares.
func (mw *mainWorld) spareSnapDir(mb int) string {
	return filepath.Join(mw.spareMnt, "pools", mw.w.pool, "configs", configFor(mb), "snapshots", "postinit")
}

// waitSpares waits (untimed) until the spare tree holds a mounted spare
// of every config and no refill is under way, so a measurement finds one
// ready and no clone runs beside it.
func (e *env) waitSpares(mw *mainWorld, sizes []int) error {
	vols := filepath.Join(mw.w.state, "pools", mw.w.pool, "volumes")
	spares := filepath.Join(mw.w.state, "spares")
	deadline := time.Now().Add(60 * time.Second)
	for {
		have := map[string]bool{}
		table := mountTable()
		ents, _ := os.ReadDir(vols)
		for _, en := range ents {
			name, ok := strings.CutSuffix(en.Name(), ".json")
			if !ok || !strings.HasPrefix(name, "thinroot-spare-") || !table[filepath.Join(spares, name)] {
				continue
			}
			var sc struct {
				Origin string `json:"origin"`
			}
			if readJSON(filepath.Join(vols, en.Name()), &sc) == nil {
				have[sc.Origin] = true
			}
		}
		intents, _ := os.ReadDir(filepath.Join(mw.w.state, "intents"))
		all := len(intents) == 0
		for _, mb := range sizes {
			all = all && have["mock."+configFor(mb)+".postinit"]
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no warm spare of every config after 60s (have %v): see %s", have, mw.spareTree.log)
		}
		select {
		case <-e.ctx.Done():
			return e.ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (mw *mainWorld) template(mb int) string {
	return filepath.Join(mw.alt, "template-"+strconv.Itoa(mb))
}

func (mw *mainWorld) tarball(mb int) string {
	return filepath.Join(mw.alt, "cache-"+strconv.Itoa(mb)+".tar.gz")
}

// snapDir is where mkdir makes a workdir of cfg from postinit in w.
func snapDir(w *world, cfg string) string {
	return filepath.Join(w.mnt, "pools", w.pool, "configs", cfg, "snapshots", "postinit")
}

// workdirLink is w's tree's symlink to a workdir's root.
func workdirLink(w *world, cfg, ext string) string {
	return filepath.Join(w.mnt, "workdirs", cfg+"."+ext)
}

// readyOnce makes one buildroot by approach and returns how long it took
// until chroot /bin/true had run in it, how much of that the chroot
// itself took, and how to remove the buildroot (not timed).
func (e *env) readyOnce(mw *mainWorld, approach string, mb, rep int) (total, chroot time.Duration, rm func() error, err error) {
	dst := filepath.Join(mw.alt, "run", fmt.Sprintf("%s-%d-%02d", approach, mb, rep))
	step := func(name string, args ...string) error {
		t, err := e.timed(name, args...)
		total += t
		if name == "chroot" {
			chroot = t
		}
		return err
	}
	switch approach {
	case "thinroot", "thinroot-btrfs", "thinroot-spare":
		w := mw.w
		if approach == "thinroot-btrfs" {
			w = mw.btrfs
		}
		if approach == "thinroot-spare" {
			sw := *mw.w
			sw.mnt = mw.spareMnt
			w = &sw
		}
		cfg := configFor(mb)
		ext := readyExt(approach, rep)
		dir := filepath.Join(snapDir(w, cfg), ext)
		if err = step("mkdir", dir); err != nil {
			return
		}
		rm = func() error { return e.run(nil, "rmdir", dir) }
		err = step("chroot", workdirLink(w, cfg, ext), "/bin/true")
	case "untar":
		rm = func() error { return os.RemoveAll(dst) }
		if err = step("mkdir", "-p", dst); err != nil {
			return
		}
		// mock's root_cache plugin unpacks with
		// tar --use-compress-program pigz -xf FILE -C ROOT.
		if err = step("tar", "--use-compress-program", mw.compress, "-xf", mw.tarball(mb), "-C", dst); err != nil {
			return
		}
		err = step("chroot", dst, "/bin/true")
	case "cp":
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return
		}
		rm = func() error { return os.RemoveAll(dst) }
		if err = step("cp", "-a", mw.template(mb), dst); err != nil {
			return
		}
		err = step("chroot", dst, "/bin/true")
	case "overlay":
		upper, work, merged := filepath.Join(dst, "upper"), filepath.Join(dst, "work"), filepath.Join(dst, "merged")
		rm = func() error {
			if err := syscall.Unmount(merged, 0); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
				return fmt.Errorf("unmount %s: %w", merged, err)
			}
			return os.RemoveAll(dst)
		}
		if err = step("mkdir", "-p", upper, work, merged); err != nil {
			return
		}
		opts := "lowerdir=" + mw.template(mb) + ",upperdir=" + upper + ",workdir=" + work
		if err = step("mount", "-t", "overlay", "overlay", "-o", opts, merged); err != nil {
			return
		}
		err = step("chroot", merged, "/bin/true")
	default:
		err = fmt.Errorf("unknown approach %q", approach)
	}
	return
}

// benchReady is benchmark 1. Repetitions go round-robin over sizes and
// approaches, the order of approaches rotating each time, so a slow
// spell on the shared machine hits all of them alike. Each buildroot is
// removed and everything synced before the next is made (untimed).
func (e *env) benchReady(mw *mainWorld, sizes []int, reps, slowReps int) (*Benchmark, error) {
	b := &Benchmark{ID: "ready", Title: "1. Fresh buildroot, ready to chroot",
		What: "time from the start of the first command until chroot ROOT /bin/true has exited in the new buildroot"}
	repsFor := func(approach string, mb int) int {
		if mb >= 1000 && (approach == "untar" || approach == "cp") {
			return min(reps, slowReps)
		}
		return reps
	}
	samples, chroots := map[string][]time.Duration{}, map[string][]time.Duration{}
	key := func(a string, mb int) string { return a + "/" + strconv.Itoa(mb) }
	for rep := 0; rep < reps; rep++ {
		for _, mb := range sizes {
			for k := range readyApproaches {
				a := readyApproaches[(k+rep)%len(readyApproaches)].id
				if rep >= repsFor(a, mb) {
					continue
				}
				if err := e.ctx.Err(); err != nil {
					return b, err
				}
				// Every approach runs with the spares made and no refill
				// beside it.
				if err := e.waitSpares(mw, sizes); err != nil {
					return b, err
				}
				d, c, rm, err := e.readyOnce(mw, a, mb, rep)
				if rm != nil {
					if rerr := rm(); rerr != nil && err == nil {
						err = rerr
					}
				}
				if err != nil {
					return b, fmt.Errorf("ready %s %d MiB rep %d: %w", a, mb, rep, err)
				}
				samples[key(a, mb)] = append(samples[key(a, mb)], d)
				chroots[key(a, mb)] = append(chroots[key(a, mb)], c)
				syncAll()
			}
		}
		e.logf("ready: repetition %d/%d done", rep+1, reps)
	}
	// What the daemon spent on each of those mkdirs, from its log.
	daemon, err := treeOps(mw.tree.log, "create workdir")
	if err != nil {
		e.logf("ready: reading the tree's log: %v", err)
	}
	spareDaemon, err := treeOps(mw.spareTree.log, "create workdir")
	if err != nil {
		e.logf("ready: reading the spare tree's log: %v", err)
	}
	for _, mb := range sizes {
		param := sizeLabel(mb)
		var thin *Measurement
		for _, a := range readyApproaches {
			m := b.add(measure("ready/"+a.id+"/"+strconv.Itoa(mb), a.id, param, a.label, "ms", ms(samples[key(a.id, mb)])))
			m.Extra = map[string]float64{}
			if c := measure("", "", "", "", "", ms(chroots[key(a.id, mb)])); c.N > 0 {
				m.Extra["chroot_true_p50_ms"] = c.P50
			}
			if a.id == "thinroot" || a.id == "thinroot-spare" {
				log := daemon
				if a.id == "thinroot-spare" {
					log = spareDaemon
				}
				var ds []time.Duration
				for rep := 0; rep < reps; rep++ {
					if d, ok := log[configFor(mb)+"."+readyExt(a.id, rep)]; ok {
						ds = append(ds, d)
					}
				}
				if dm := measure("", "", "", "", "", ms(ds)); dm.N > 0 {
					m.Extra["daemon_create_workdir_p50_ms"] = dm.P50
					m.Extra["daemon_create_workdir_p95_ms"] = dm.P95
				}
			}
			if a.id == "thinroot" {
				thin = m
			} else {
				thin.against(a.id+"_over_thinroot", m)
			}
		}
	}
	mid := sizes[len(sizes)/2]
	b.headline(b.find("ready/thinroot/" + strconv.Itoa(mid)))
	b.Commands = []string{
		"thinroot: mkdir $MNT/pools/bench/configs/synth-<N>m/snapshots/postinit/<ext>; chroot $MNT/workdirs/synth-<N>m.<ext> /bin/true",
		"thinroot, a warm spare ready: the same in a second tree on the same pool run with --spares 1 (the first tree runs with --spares 0); before every measurement of any approach (untimed) the run waits until that tree holds a mounted spare of every config and no operation is under way",
		"thinroot, btrfs backend: the same in a second tree whose pool is a btrfs image (a subvolume snapshot, bind-mounted)",
		"untar: mkdir -p $DST; tar --use-compress-program " + mw.compress + " -xf $ALT/cache-<N>.tar.gz -C $DST; chroot $DST /bin/true",
		"cp -a: cp -a $ALT/template-<N> $DST; chroot $DST /bin/true",
		"overlayfs: mkdir -p $D/upper $D/work $D/merged; mount -t overlay overlay -o lowerdir=$ALT/template-<N>,upperdir=$D/upper,workdir=$D/work $D/merged; chroot $D/merged /bin/true",
		"between repetitions (not timed): rmdir the workdir / rm -rf / umount, then sync",
	}
	b.Notes = append(b.Notes, fmt.Sprintf("Headline: the %s root. Ratios are the alternative's figure over thinroot's (how many times thinroot is faster).", sizeLabel(mid)))
	if slowReps < reps {
		b.Notes = append(b.Notes, fmt.Sprintf("untar and cp -a of roots of 1000 MiB and more ran %d times, not %d, to keep the run under 15 minutes; every other figure has %d samples.", slowReps, reps, reps))
	}
	return b, nil
}

func sizeLabel(mb int) string {
	if mb >= 1024 && mb%1024 == 0 {
		return strconv.Itoa(mb/1024) + " GiB"
	}
	return strconv.Itoa(mb) + " MiB"
}
