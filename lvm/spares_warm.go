package lvm

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm/mock"
)

// Warm caches. A workdir on a loop device reads its files through the
// loop device from its image file, whose page cache starts empty: a clone
// is an inode of its own. What the workdirs of a (config, snapshot) read
// is visible, when one is removed, as the resident pages of its image
// file (mincore); those are the same offsets in every clone of the
// snapshot. The keeper records them (hotSet) and reads them into each new
// spare's image before handing it over, so the first exec in a fresh
// workdir reads from memory, not from the disk. This applies to volumes
// on loop devices (the file backend); others have nothing to record.

// maxHotBytes bounds what is read into one spare.
const maxHotBytes = 512 << 20

// hotSet is a set of page ranges of an image, in pages.
type hotSet struct {
	pages map[int64]bool
}

// loopBacking is the backing file of a loop device ("" when dev is not
// one or has none).
func loopBacking(dev string) string {
	name := filepath.Base(dev)
	if !strings.HasPrefix(name, "loop") {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/sys/block", name, "loop", "backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
}

// residentPages lists the pages of a file that are in the page cache.
func residentPages(path string) []int64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	defer unix.Munmap(data)
	page := int64(os.Getpagesize())
	vec := make([]byte, (fi.Size()+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return nil
	}
	var out []int64
	for i, v := range vec {
		if v&1 != 0 {
			out = append(out, int64(i))
		}
	}
	return out
}

// noteHot records what the workdir mounted at target read, for the spares
// of its snapshot (called before it is unmounted for good).
func (m *Manager) noteHot(root, origin, target string) {
	s := m.keeper()
	if s == nil {
		return
	}
	vn, ok := mock.ParseVolume(origin, []string{root})
	if !ok || vn.Workdir || vn.Root != root {
		return
	}
	table, err := mount.Table()
	if err != nil {
		return
	}
	e, ok := mount.Lookup(table, target)
	if !ok {
		return
	}
	img := loopBacking(e.Source)
	if img == "" {
		return
	}
	pages := residentPages(img)
	if len(pages) == 0 {
		return
	}
	k := spareKey{root, vn.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hot[k]
	if h == nil {
		h = &hotSet{pages: map[int64]bool{}}
		s.hot[k] = h
	}
	limit := int(maxHotBytes / int64(os.Getpagesize()))
	for _, p := range pages {
		if len(h.pages) >= limit {
			break
		}
		h.pages[p] = true
	}
}

// warm reads a spare's hot pages into its image's page cache. It runs
// outside the config's lock; a spare handed over meanwhile is warmed all
// the same.
func (m *Manager) warm(sp *spare) {
	s := m.keeper()
	if s == nil {
		return
	}
	s.mu.Lock()
	var pages []int64
	if h := s.hot[sp.key]; h != nil {
		pages = make([]int64, 0, len(h.pages))
		for p := range h.pages {
			pages = append(pages, p)
		}
	}
	s.mu.Unlock()
	if len(pages) == 0 {
		return
	}
	img := loopBacking(sp.v.Mount.Source)
	if img == "" {
		return
	}
	f, err := os.Open(img)
	if err != nil {
		return
	}
	defer f.Close()
	sort.Slice(pages, func(i, j int) bool { return pages[i] < pages[j] })
	if pages = inData(f, pages); len(pages) == 0 {
		return
	}
	page := int64(os.Getpagesize())
	// Runs of consecutive pages, read in one go each.
	buf := make([]byte, 1<<20)
	for i := 0; i < len(pages); {
		j := i + 1
		for j < len(pages) && pages[j] == pages[j-1]+1 && int64(j-i)*page < int64(len(buf)) {
			j++
		}
		f.ReadAt(buf[:int64(j-i)*page], pages[i]*page)
		i = j
	}
	s.warmed.Add(1)
}

// inData keeps the pages (sorted) that lie in f's data, leaving those in
// its holes. A hot set also holds what earlier workdirs wrote (a dnf
// install: hundreds of MiB, mostly into blocks their snapshot never
// allocated); in a fresh clone those pages are holes, which read as
// zeros that no exec will ask for. When f cannot say, all pages stay.
func inData(f *os.File, pages []int64) []int64 {
	page := int64(os.Getpagesize())
	fd := int(f.Fd())
	var out []int64
	// [dataStart, dataEnd) is the data run at or after the last page
	// looked at; pages are sorted, so each run is sought once.
	dataStart, dataEnd := int64(-1), int64(-1)
	for _, p := range pages {
		off := p * page
		if off >= dataEnd {
			start, err := unix.Seek(fd, off, unix.SEEK_DATA)
			if errors.Is(err, unix.ENXIO) {
				break // no data at or after off
			}
			if err != nil {
				return pages
			}
			end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
			if err != nil {
				return pages
			}
			dataStart, dataEnd = start, end
		}
		if off >= dataStart {
			out = append(out, p)
		}
	}
	return out
}
