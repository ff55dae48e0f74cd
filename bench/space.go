package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Benchmark 2: 16 working copies of one root, each with 1 MiB of new
// data, and the space they take beyond the root itself. Every approach is
// measured the same way: statfs of the filesystem that holds it (blocks
// in use), after sync, before and after each copy.

const (
	spaceCopies = 16
	spaceWrite  = 1 << 20
)

// writeNew writes 1 MiB of incompressible bytes into a new file under
// root and flushes it.
func writeNew(root string, seed uint64) error {
	dir := filepath.Join(root, "space")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	buf := make([]byte, spaceWrite)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	f, err := os.Create(filepath.Join(dir, "new.bin"))
	if err != nil {
		return err
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// spaceRun makes the copies one at a time with makeCopy (which returns the
// copy's root and how to remove it) and records what each adds to the
// filesystem at fsDir. Before each statfs the copy's filesystem and then
// fsDir's are flushed (syncfs), so delayed allocation and the loop layer
// hide nothing; the host disk itself need not be flushed for that.
func (e *env) spaceRun(fsDir string, makeCopy func(i int) (string, func() error, error)) ([]float64, float64, []func() error, error) {
	var incs []float64
	var removes []func() error
	if err := syncfs(fsDir); err != nil {
		return nil, 0, nil, err
	}
	start, err := usedBytes(fsDir)
	if err != nil {
		return nil, 0, nil, err
	}
	prev := start
	for i := 0; i < spaceCopies; i++ {
		root, rm, err := makeCopy(i)
		if rm != nil {
			removes = append(removes, rm)
		}
		if err != nil {
			return nil, 0, removes, err
		}
		if err := writeNew(root, uint64(i)); err != nil {
			return nil, 0, removes, fmt.Errorf("write 1 MiB into %s: %w", root, err)
		}
		if err := syncfs(root, fsDir); err != nil {
			return nil, 0, removes, err
		}
		u, err := usedBytes(fsDir)
		if err != nil {
			return nil, 0, removes, err
		}
		incs = append(incs, float64(u-prev)/(1<<20))
		prev = u
	}
	return incs, float64(prev-start) / (1 << 20), removes, nil
}

// benchSpace is benchmark 2, on the root of size mb.
func (e *env) benchSpace(mw *mainWorld, mb int) (*Benchmark, error) {
	b := &Benchmark{ID: "space", Title: "2. Space: 16 workdirs, each writing 1 MiB",
		What: fmt.Sprintf("space the filesystem holding them reports in use (statfs, after syncfs) beyond the %s root, per copy and for all 16", sizeLabel(mb))}
	cfg := configFor(mb)
	poolDir := filepath.Join(mw.w.state, "pools", mw.w.pool)
	ri := mw.roots[mb]
	var all []func() error
	defer func() {
		for i := len(all) - 1; i >= 0; i-- {
			if err := all[i](); err != nil {
				e.logf("space: cleanup: %v", err)
			}
		}
		syncAll()
	}()

	type run struct {
		id, label string
		fs        string
		root      float64 // MiB the root itself takes there
		makeCopy  func(i int) (string, func() error, error)
	}
	runs := []run{
		{"thinroot", "thinroot workdirs (pool: XFS reflink image)", poolDir, float64(ri.SnapshotBytes) / (1 << 20),
			func(i int) (string, func() error, error) {
				ext := fmt.Sprintf("s%02d", i)
				dir := filepath.Join(snapDir(mw.w, cfg), ext)
				if err := e.run(nil, "mkdir", dir); err != nil {
					return "", nil, err
				}
				rm := func() error { return e.run(nil, "rmdir", dir) }
				root, err := filepath.EvalSymlinks(workdirLink(mw.w, cfg, ext))
				return root, rm, err
			}},
		{"cp", "cp -a copies (ext4)", mw.alt, float64(mw.templateBytes[mb]) / (1 << 20),
			func(i int) (string, func() error, error) {
				dst := filepath.Join(mw.alt, "space", "cp-"+strconv.Itoa(i))
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return "", nil, err
				}
				rm := func() error { return os.RemoveAll(dst) }
				return dst, rm, e.run(nil, "cp", "-a", mw.template(mb), dst)
			}},
		{"overlay", "overlayfs uppers (ext4)", mw.alt, float64(mw.templateBytes[mb]) / (1 << 20),
			func(i int) (string, func() error, error) {
				d := filepath.Join(mw.alt, "space", "ov-"+strconv.Itoa(i))
				upper, work, merged := filepath.Join(d, "upper"), filepath.Join(d, "work"), filepath.Join(d, "merged")
				for _, x := range []string{upper, work, merged} {
					if err := os.MkdirAll(x, 0o755); err != nil {
						return "", nil, err
					}
				}
				rm := func() error {
					if err := syscall.Unmount(merged, 0); err != nil && err != syscall.EINVAL {
						return fmt.Errorf("unmount %s: %w", merged, err)
					}
					return os.RemoveAll(d)
				}
				opts := "lowerdir=" + mw.template(mb) + ",upperdir=" + upper + ",workdir=" + work
				return merged, rm, e.run(nil, "mount", "-t", "overlay", "overlay", "-o", opts, merged)
			}},
	}
	var thin *Measurement
	for _, r := range runs {
		e.logf("space: %s", r.label)
		incs, total, removes, err := e.spaceRun(r.fs, r.makeCopy)
		all = append(all, removes...)
		if err != nil {
			return b, fmt.Errorf("space %s: %w", r.id, err)
		}
		m := b.add(measure("space/"+r.id, r.id, sizeLabel(mb), r.label, "MiB per copy", incs))
		m.Total = round(total, 4)
		m.Ratios = Ratios{"root_mib": round(r.root, 4), "root_plus_16_over_root": ratio(r.root+total, r.root)}
		if r.id == "thinroot" {
			thin = m
		} else {
			thin.Ratios[r.id+"_over_thinroot_total"] = ratio(total, thin.Total)
			thin.against(r.id+"_over_thinroot", m)
		}
	}
	b.headline(thin)
	b.Commands = []string{
		"thinroot: mkdir $MNT/pools/bench/configs/" + cfg + "/snapshots/postinit/sNN",
		"cp -a: cp -a $ALT/template-" + strconv.Itoa(mb) + " $ALT/space/cp-N",
		"overlayfs: mount -t overlay overlay -o lowerdir=$ALT/template-" + strconv.Itoa(mb) + ",upperdir=...,workdir=... $ALT/space/ov-N/merged",
		"then, in each: write 1 MiB of random bytes to space/new.bin and fsync it; syncfs of the copy's filesystem, then of the pool (thinroot) or of $ALT (the others); statfs of the latter before and after",
	}
	b.Notes = append(b.Notes,
		"Per copy: what the filesystem's used blocks grew by while the copy was made and written (p50/p95 over the 16). Total: all 16 together.",
		"root_plus_16_over_root is (the root + all 16 copies) over the root alone, with the root measured on the same filesystem the same way: the postinit image's allocated blocks in the pool, statfs growth for the template on $ALT.",
	)
	return b, nil
}
