package lvm

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
// <basedir>/.snapinfo-mock.<root>.<ext>: the snapshot's full LV name, no
// newline. It reads it back with rstrip(), so trailing space is tolerated.

// readSnapinfo returns the LV name recorded for ext, "" when there is none.
func readSnapinfo(c *Config, ext string) (string, error) {
	b, err := os.ReadFile(c.SnapinfoPath(ext))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read snapinfo: %w", err)
	}
	return strings.TrimRight(string(b), " \t\r\n"), nil
}

// writeSnapinfo records lv as the current snapshot of ext. It writes a
// temporary file and renames it, so a reader (mock included) never sees a
// half-written name.
func writeSnapinfo(c *Config, ext, lv string) error {
	path := c.SnapinfoPath(ext)
	if err := fsutil.WriteFileAtomic(path, []byte(lv), 0o644); err != nil {
		return fmt.Errorf("write snapinfo: %w", err)
	}
	return nil
}

func removeSnapinfo(c *Config, ext string) error {
	err := os.Remove(c.SnapinfoPath(ext))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove snapinfo: %w", err)
	}
	return nil
}

// snapinfoExts lists the exts that have a record for config c.
func snapinfoExts(c *Config) []string {
	prefix := ".snapinfo-" + c.ConfID() + "."
	ents, err := os.ReadDir(c.Basedir)
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

// sweepSnapinfoTemps removes the temporaries of c's records that a writer
// killed inside writeSnapinfo left (fsutil.WriteFileAtomic names them
// "." + record + ".tmp-*"). Every thinroot writer of c's records holds
// c's config lock, and so does the caller: any such file is abandoned.
func sweepSnapinfoTemps(c *Config) {
	ents, err := os.ReadDir(c.Basedir)
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
		if j := strings.LastIndexByte(rest[:i], '.'); j > 0 && rest[:j] == c.ConfID() {
			os.Remove(filepath.Join(c.Basedir, e.Name()))
		}
	}
}
