package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// The synthetic root stands in for a distribution buildroot: the same
// scale of file count, the same long tail of file sizes (most files a few
// KiB, a few shared libraries and binaries of many MiB), directories a few
// to ten levels deep, symlinks among the files, and content that gzip
// shrinks by roughly 2.5x, as it does a real root. It is a pure function of
// its size and seed, so the root behind thinroot's snapshot and the one
// the alternatives copy are the same bytes, run after run.

// rootSpec says what to generate.
type rootSpec struct {
	MB    int    // total bytes of regular file content, in MiB
	Files int    // regular files (0: derived from MB)
	Seed  uint64 // fixed; part of the root's identity
}

// rootStats describes a generated root.
type rootStats struct {
	MB        int     `json:"mb"`
	Seed      uint64  `json:"seed"`
	Files     int     `json:"files"`
	Symlinks  int     `json:"symlinks"`
	Dirs      int     `json:"dirs"`
	Bytes     int64   `json:"bytes"`
	MaxDepth  int     `json:"max_depth"`
	MeanDepth float64 `json:"mean_depth"`
	// MedianFile and P99File are file sizes in bytes.
	MedianFile int64   `json:"median_file_bytes"`
	P99File    int64   `json:"p99_file_bytes"`
	LargestMB  float64 `json:"largest_file_mb"`
	Seconds    float64 `json:"seconds"`
}

// defaultSeed is the seed every benchmark root uses.
const defaultSeed = 20260126

// filesFor is the file count of a root of mb MiB: about 10k files at 50
// MiB, 40k at 300 MiB, 60k at 1 GiB (bigger roots grow mostly by bigger
// files: toolchains, debug data), interpolated between on a log scale.
func filesFor(mb int) int {
	pts := []struct{ mb, files float64 }{{50, 10000}, {300, 40000}, {1000, 60000}}
	x := float64(max(mb, 1))
	if x <= pts[0].mb {
		return max(200, int(pts[0].files*x/pts[0].mb))
	}
	for i := 1; i < len(pts); i++ {
		if x <= pts[i].mb {
			a, b := pts[i-1], pts[i]
			f := math.Log(x/a.mb) / math.Log(b.mb/a.mb)
			return int(math.Exp(math.Log(a.files) + f*math.Log(b.files/a.files)))
		}
	}
	last := pts[len(pts)-1]
	return int(last.files * math.Sqrt(x/last.mb))
}

// area is a top-level part of the root with its share of the files and
// the extensions its files get.
type area struct {
	path  string
	share float64
	exts  []string
	exec  bool
}

var areas = []area{
	{"usr/lib64", 0.22, []string{".so", ".so.1", ".a", ".la"}, true},
	{"usr/lib/python3/site-packages", 0.18, []string{".py", ".pyc", ".pth", ".txt"}, false},
	{"usr/share/doc", 0.08, []string{"", ".txt", ".md", ".html"}, false},
	{"usr/share/locale", 0.12, []string{".mo"}, false},
	{"usr/share/man", 0.08, []string{".1.gz", ".3.gz", ".5.gz", ".8.gz"}, false},
	{"usr/share/misc", 0.08, []string{".xml", ".json", ".dat", ".conf"}, false},
	{"usr/include", 0.14, []string{".h", ".hpp", ".inc"}, false},
	{"usr/libexec", 0.05, []string{"", ".sh"}, true},
	{"usr/lib/modules-data", 0.03, []string{".bin", ".fw"}, false},
	{"etc/defaults", 0.02, []string{".conf", ".cfg", ""}, false},
}

// fixedTime is every generated entry's mtime, so tarballs of the root are
// byte for byte the same.
var fixedTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// contentPool is the bytes files are cut from: 4 KiB blocks, one in six
// random (like compressed or machine code sections) and the rest lines of
// text drawn from a few hundred (like source, docs, symbol tables), which
// gzip shrinks about as much as it does a real root.
func contentPool(rng *rand.Rand, size int) []byte {
	words := make([]string, 512)
	for i := range words {
		words[i] = word(rng)
	}
	seps := []string{" ", " ", " ", "_", "(", ");", " = ", ".", ", ", "/"}
	lines := make([][]byte, 400)
	for i := range lines {
		var l []byte
		for j := 3 + rng.IntN(10); j > 0; j-- {
			l = append(l, words[rng.IntN(len(words))]...)
			l = append(l, seps[rng.IntN(len(seps))]...)
		}
		lines[i] = append(l, '\n')
	}
	var b bytes.Buffer
	b.Grow(size)
	block := make([]byte, 4096)
	for b.Len() < size {
		if rng.IntN(6) == 0 {
			for i := range block {
				block[i] = byte(rng.Uint32())
			}
			b.Write(block)
			continue
		}
		for n := 0; n < len(block); {
			n += copy(block[n:], lines[rng.IntN(len(lines))])
		}
		b.Write(block)
	}
	return b.Bytes()[:size]
}

type genDir struct {
	rel   string
	depth int
	area  int
	exec  bool
}

type genFile struct {
	dir  int
	name string
	size int64
	link string // symlink target (same directory) when not ""
}

// planRoot decides every directory and file of the root.
func planRoot(spec rootSpec, rng *rand.Rand) ([]genDir, []genFile) {
	nFiles := spec.Files
	if nFiles <= 0 {
		nFiles = filesFor(spec.MB)
	}
	total := int64(spec.MB) << 20

	// Directories: each area is a random tree. A new directory hangs
	// under a random directory of its area, or under the area itself a
	// third of the time, which keeps most files 3 to 8 levels down.
	nDirs := max(len(areas), nFiles/12)
	dirs := make([]genDir, 0, nDirs)
	byArea := make([][]int, len(areas))
	for i, a := range areas {
		dirs = append(dirs, genDir{rel: a.path, depth: depthOf(a.path), area: i, exec: a.exec})
		byArea[i] = append(byArea[i], i)
	}
	cum := make([]float64, len(areas))
	s := 0.0
	for i, a := range areas {
		s += a.share
		cum[i] = s
	}
	pickArea := func() int {
		u := rng.Float64() * s
		return sort.SearchFloat64s(cum, u)
	}
	for len(dirs) < nDirs {
		ai := min(pickArea(), len(areas)-1)
		parent := ai
		if rng.IntN(3) != 0 {
			parent = byArea[ai][rng.IntN(len(byArea[ai]))]
		}
		p := dirs[parent]
		d := genDir{rel: p.rel + "/" + word(rng) + strconv.FormatInt(int64(len(dirs)), 36),
			depth: p.depth + 1, area: ai, exec: p.exec}
		byArea[ai] = append(byArea[ai], len(dirs))
		dirs = append(dirs, d)
	}

	// Files go to directories of an area chosen by share; within it,
	// earlier directories get more (a few big directories, many small).
	files := make([]genFile, 0, nFiles+nFiles/10)
	var sum int64
	for i := 0; i < nFiles; i++ {
		ai := min(pickArea(), len(areas)-1)
		ds := byArea[ai]
		u := rng.Float64()
		di := ds[int(float64(len(ds))*u*u)]
		a := areas[ai]
		name := word(rng) + "-" + strconv.FormatInt(int64(i), 36) + a.exts[rng.IntN(len(a.exts))]
		// Log-normal sizes: median 2 KiB, long tail, at most 2 MiB.
		sz := int64(math.Exp(math.Log(2048) + 1.5*rng.NormFloat64()))
		sz = min(max(sz, 0), 2<<20)
		files = append(files, genFile{dir: di, name: name, size: sz})
		sum += sz
	}
	// The rest of the budget goes to a few big files (libraries, compilers,
	// data), Pareto-distributed; if the small files alone overshoot, they
	// shrink to fit.
	if rest := total - sum; rest > 0 {
		nBig := max(2, nFiles/800)
		w := make([]float64, nBig)
		ws := 0.0
		for i := range w {
			w[i] = math.Pow(1-rng.Float64(), -1/1.2)
			ws += w[i]
		}
		var given int64
		for i := range w {
			sz := int64(float64(rest) * w[i] / ws)
			if i == len(w)-1 {
				sz = rest - given
			}
			given += sz
			ai := 0 // libraries
			if i%3 == 1 {
				ai = 8 // data
			}
			ds := byArea[ai]
			files = append(files, genFile{dir: ds[rng.IntN(len(ds))],
				name: "big" + word(rng) + "-" + strconv.Itoa(i) + areas[ai].exts[0], size: sz})
		}
	} else {
		f := float64(total) / float64(sum)
		var given int64
		for i := range files {
			files[i].size = int64(float64(files[i].size) * f)
			given += files[i].size
		}
		files[len(files)-1].size += total - given
	}
	// Symlinks: about one entry in twelve, pointing at a file beside it
	// (libfoo.so -> libfoo.so.1 and the like).
	n := len(files)
	for i := 0; i < n/11; i++ {
		t := files[rng.IntN(n)]
		files = append(files, genFile{dir: t.dir, name: t.name + ".l" + strconv.Itoa(i), link: t.name})
	}
	return dirs, files
}

func depthOf(rel string) int {
	d := 1
	for _, c := range rel {
		if c == '/' {
			d++
		}
	}
	return d
}

func word(rng *rand.Rand) string {
	const syll = "bacodefigahilumonapiresotuvawyxz"
	n := 2 + rng.IntN(4)
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		j := 2 * rng.IntN(len(syll)/2)
		b = append(b, syll[j], syll[j+1])
	}
	return string(b)
}

// generateRoot writes the synthetic part of a root under dir (which the
// busybox bootstrap has already filled).
func generateRoot(dir string, spec rootSpec) (rootStats, error) {
	start := time.Now()
	if spec.Seed == 0 {
		spec.Seed = defaultSeed
	}
	rng := rand.New(rand.NewPCG(spec.Seed, uint64(spec.MB)))
	dirs, files := planRoot(spec, rng)
	pool := contentPool(rng, 8<<20)
	st := rootStats{MB: spec.MB, Seed: spec.Seed, Dirs: len(dirs)}
	depthSum := 0
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d.rel), 0o755); err != nil {
			return st, fmt.Errorf("generate root: %w", err)
		}
		st.MaxDepth = max(st.MaxDepth, d.depth)
	}
	var sizes []int64
	for i, f := range files {
		d := dirs[f.dir]
		path := filepath.Join(dir, d.rel, f.name)
		depthSum += d.depth + 1
		if f.link != "" {
			if err := os.Symlink(f.link, path); err != nil {
				return st, fmt.Errorf("generate root: %w", err)
			}
			st.Symlinks++
			continue
		}
		mode := os.FileMode(0o644)
		if d.exec && rng.IntN(2) == 0 {
			mode = 0o755
		}
		off := rng.IntN(len(pool))
		if err := writeSynth(path, mode, f.size, pool, off, i); err != nil {
			return st, err
		}
		st.Files++
		st.Bytes += f.size
		sizes = append(sizes, f.size)
	}
	// Directory mtimes last, after their entries were made.
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(filepath.Join(dir, dirs[i].rel), fixedTime, fixedTime)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	if len(sizes) > 0 {
		st.MedianFile = sizes[len(sizes)/2]
		st.P99File = sizes[len(sizes)*99/100]
		st.LargestMB = float64(sizes[len(sizes)-1]) / (1 << 20)
	}
	st.MeanDepth = math.Round(100*float64(depthSum)/float64(max(1, len(files)))) / 100
	st.Seconds = time.Since(start).Seconds()
	return st, nil
}

// writeSynth writes size bytes cut from pool at off (wrapping), after a
// short header unique to the file so no two files are the same.
func writeSynth(path string, mode os.FileMode, size int64, pool []byte, off, id int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("generate root: %w", err)
	}
	hdr := []byte(fmt.Sprintf("#%d %s\n", id, filepath.Base(path)))
	if int64(len(hdr)) > size {
		hdr = hdr[:size]
	}
	_, err = f.Write(hdr)
	left := size - int64(len(hdr))
	for err == nil && left > 0 {
		n := min(int64(len(pool)-off), left, 1<<20)
		_, err = f.Write(pool[off : off+int(n)])
		left -= n
		off = (off + int(n)) % len(pool)
	}
	if err == nil {
		err = f.Chmod(mode) // the umask must not change the root
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(path, fixedTime, fixedTime)
	}
	if err != nil {
		return fmt.Errorf("generate root: %s: %w", path, err)
	}
	return nil
}

// cmdGenroot is the bootstrap command: busybox first (so the root can be
// chrooted into), then the synthetic tree. ROOT names the root, as for
// every thinroot bootstrap.
func cmdGenroot(args []string) error {
	fs := flag.NewFlagSet("genroot", flag.ContinueOnError)
	mb := fs.Int("mb", 300, "MiB of file content")
	files := fs.Int("files", 0, "regular files (default: derived from -mb)")
	seed := fs.Uint64("seed", defaultSeed, "generator seed")
	busybox := fs.String("busybox-script", "", "busybox bootstrap script to run first (default: none)")
	statsOut := fs.String("stats", "", "write the root's figures as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root := os.Getenv("ROOT")
	if root == "" || root == "/" {
		return errors.New("genroot: ROOT must name the root to fill")
	}
	if *busybox != "" {
		cmd := exec.Command("/bin/sh", *busybox)
		cmd.Env = append(os.Environ(), "ROOT="+root)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("genroot: busybox bootstrap: %w", err)
		}
	}
	st, err := generateRoot(root, rootSpec{MB: *mb, Files: *files, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "genroot: %d files, %d symlinks, %d dirs, %.1f MiB in %.1fs under %s\n",
		st.Files, st.Symlinks, st.Dirs, float64(st.Bytes)/(1<<20), st.Seconds, root)
	if *statsOut != "" {
		return writeJSONFile(*statsOut, st)
	}
	return nil
}
