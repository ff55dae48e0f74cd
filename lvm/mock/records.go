package mock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinroot/thinroot/internal/fsutil"
)

// mock records the current snapshot of a (config, unique-ext) in
// <basedir>/.snapinfo-mock.<root>.<ext>: the snapshot's full volume name,
// no newline. It reads it back with rstrip(), so trailing space is
// tolerated.

// ReadSnapinfo returns the volume name recorded for ext, "" when there is
// none.
func (d Dirs) ReadSnapinfo(ext string) (string, error) {
	b, err := os.ReadFile(d.SnapinfoPath(ext))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read snapinfo: %w", err)
	}
	return strings.TrimRight(string(b), " \t\r\n"), nil
}

// WriteSnapinfo records vol as the current snapshot of ext. It writes a
// temporary file and renames it, so a reader (mock included) never sees a
// half-written name.
func (d Dirs) WriteSnapinfo(ext, vol string) error {
	if err := fsutil.WriteFileAtomic(d.SnapinfoPath(ext), []byte(vol), 0o644); err != nil {
		return fmt.Errorf("write snapinfo: %w", err)
	}
	return nil
}

// RemoveSnapinfo removes ext's record; a missing record is no error.
func (d Dirs) RemoveSnapinfo(ext string) error {
	err := os.Remove(d.SnapinfoPath(ext))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove snapinfo: %w", err)
	}
	return nil
}

// SnapinfoExts lists the exts that have a record for the config.
func (d Dirs) SnapinfoExts() []string {
	prefix := ".snapinfo-" + ConfID(d.Root) + "."
	ents, err := os.ReadDir(d.Basedir)
	if err != nil {
		return nil
	}
	var exts []string
	for _, e := range ents {
		if ext, ok := strings.CutPrefix(e.Name(), prefix); ok && ext != "" && !strings.Contains(ext, ".") {
			exts = append(exts, ext)
		}
	}
	return exts
}

// SweepSnapinfoTemps removes the temporaries of the config's records that
// a writer killed inside WriteSnapinfo left (fsutil.WriteFileAtomic names
// them "." + record + ".tmp-*"). The caller holds the config's lock,
// which every thinroot writer of its records holds too: any such file is
// abandoned.
func (d Dirs) SweepSnapinfoTemps() {
	ents, err := os.ReadDir(d.Basedir)
	if err != nil {
		return
	}
	prefix := "..snapinfo-"
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		i := strings.Index(rest, ".tmp-")
		if i < 0 {
			continue
		}
		// rest[:i] is "<conf id>.<ext>", and exts have no dots.
		if j := strings.LastIndexByte(rest[:i], '.'); j > 0 && rest[:j] == ConfID(d.Root) {
			os.Remove(filepath.Join(d.Basedir, e.Name()))
		}
	}
}
