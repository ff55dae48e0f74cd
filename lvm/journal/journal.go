// Package journal is the Manager's crash journal. An intent records a
// multi-step operation while it runs: what it will make, mount, freeze and
// change, declared before it does any of it. The running process holds a
// lock on its intent file; a free lock means its writer is dead, and the
// next process to look finishes the job the one way the operation's type
// says: creations are rolled back, removals rolled forward (package lvm
// does that, with the same code an operation that fails runs).
//
// Intents are not state: they exist only while an operation runs and say
// nothing that is not also on disk. The package imports lvm/backend (for
// the backend's Spec) and small helpers, nothing of the Manager.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/lvm/backend"
)

// Op is an operation the journal records. Its type decides which way a
// dead one is finished.
type Op string

// The operations.
const (
	Init           Op = "init"
	WorkdirCreate  Op = "workdir-create"
	WorkdirRemove  Op = "workdir-remove"
	Snapshot       Op = "snapshot"
	SnapshotRemove Op = "snapshot-remove"
	Scrub          Op = "scrub"
	// SpareCreate makes a warm spare: a workdir volume of no ext, mounted
	// in the Manager's private spares directory; SpareRemove removes one.
	SpareCreate Op = "spare-create"
	SpareRemove Op = "spare-remove"
)

// Forward tells whether a dead operation of this type is finished (a
// removal: what it removes goes, what it records is written) rather than
// undone (a creation: what it made goes, records get their old content).
func (o Op) Forward() bool {
	switch o {
	case WorkdirRemove, SnapshotRemove, Scrub, SpareRemove:
		return true
	}
	return false
}

// RemovesPool tells whether finishing the operation also removes its pool
// once no volume of anyone is left in it (scrub, as the finished
// operation would).
func (o Op) RemovesPool() bool { return o == Scrub }

// Intent is one operation's record.
type Intent struct {
	Op      Op           `json:"op"`
	Root    string       `json:"root"` // the config's name
	Pool    string       `json:"pool"`
	Backend backend.Spec `json:"backend"`
	// Volumes are the volumes it makes or removes, in creation order.
	Volumes []string `json:"volumes"`
	// Mounts are mount points it mounts or unmounts; Frozen ones it may
	// leave frozen.
	Mounts []string `json:"mounts,omitempty"`
	Frozen []string `json:"frozen,omitempty"`
	// Records are mock's current-snapshot records the operation changes,
	// declared before it changes any: rolling back puts the old content
	// back, finishing writes the new one.
	Records []Record  `json:"records,omitempty"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// Record is one file an operation changes; nil means no file.
type Record struct {
	Path string  `json:"path"`
	Old  *string `json:"old"`
	New  *string `json:"new"`
}

// Change declares that the file at path will hold content ("" removes
// it), capturing what it holds now.
func Change(path, content string) Record {
	rc := Record{Path: path}
	if b, err := os.ReadFile(path); err == nil {
		old := string(b)
		rc.Old = &old
	}
	if content != "" {
		rc.New = &content
	}
	return rc
}

// Set puts the record's content for the given direction in place,
// atomically: New when forward, Old otherwise; nil removes the file.
func (rc Record) Set(forward bool) error {
	content := rc.Old
	if forward {
		content = rc.New
	}
	if content == nil {
		if err := os.Remove(rc.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return fsutil.WriteFileAtomic(rc.Path, []byte(*content), 0o644)
}

// UnmarshalJSON also reads intents written before the backend was a Spec
// (a string: "file", or "lvm2:<volume group>"), so that an upgrade in the
// middle of an operation still finishes it.
func (in *Intent) UnmarshalJSON(data []byte) error {
	type plain Intent
	var raw struct {
		plain
		Backend json.RawMessage `json:"backend"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*in = Intent(raw.plain)
	var old string
	if json.Unmarshal(raw.Backend, &old) == nil {
		kind, vg, ok := strings.Cut(old, ":")
		in.Backend = backend.Spec{Kind: kind}
		if ok {
			in.Backend.Options = map[string]string{"volume_group": vg}
		}
		return nil
	}
	if len(raw.Backend) == 0 {
		return nil
	}
	return json.Unmarshal(raw.Backend, &in.Backend)
}

// Journal is a directory of intents.
type Journal struct {
	dir string
}

// New returns the journal in dir (made when the first intent is).
func New(dir string) *Journal { return &Journal{dir: dir} }

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// tempPrefix names an intent being written; a reader ignores it while
// its writer holds it, and SweepTemps removes it once the lock is free
// (its writer died before the intent was in place: nothing was done).
const tempPrefix = ".new-"

// Entry is an intent this process holds: its own operation's, or a dead
// one it claimed to finish.
type Entry struct {
	Intent
	path string
	lock *lock.Held
}

// beforeLock, when set (by tests), runs between the creation of an
// intent's temporary and its lock: where a sweep can get in.
var beforeLock func(path string)

// Begin writes and locks an intent.
func (j *Journal) Begin(in Intent) (*Entry, error) {
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return nil, err
	}
	in.PID, in.Started = os.Getpid(), time.Now().UTC()
	// Write and lock it under a name readers ignore, then rename it into
	// place: the lock belongs to the open file, not the name, so nobody
	// can ever see it unlocked or half written.
	var f *os.File
	for attempt := 0; ; attempt++ {
		var err error
		if f, err = os.CreateTemp(j.dir, tempPrefix+string(in.Op)+"-*"); err != nil {
			return nil, fmt.Errorf("record intent: %w", err)
		}
		if beforeLock != nil {
			beforeLock(f.Name())
		}
		if ok, err := lock.TryLockOpen(f); !ok {
			f.Close()
			// A sweep found the fresh file unlocked and holds it to
			// remove it as abandoned: leave it that, take a new one.
			if err == nil && attempt < 10 {
				continue
			}
			os.Remove(f.Name())
			return nil, fmt.Errorf("lock intent: %v", err)
		}
		// Between its creation and our lock the file was nobody's, and a
		// sweep may have removed it as abandoned: start over then.
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Nlink == 0 && attempt < 10 {
			f.Close()
			continue
		}
		break
	}
	e := &Entry{Intent: in, lock: lock.Adopt(f)}
	e.path = filepath.Join(j.dir, strings.TrimPrefix(filepath.Base(f.Name()), tempPrefix)+".json")
	if err := e.write(); err != nil {
		e.lock.Release()
		os.Remove(f.Name())
		return nil, err
	}
	if err := os.Rename(f.Name(), e.path); err != nil {
		e.lock.Release()
		os.Remove(f.Name())
		return nil, fmt.Errorf("record intent: %w", err)
	}
	return e, nil
}

// write rewrites the intent in place through the locked descriptor.
func (e *Entry) write() error {
	data, err := json.Marshal(e.Intent)
	if err != nil {
		return err
	}
	f := e.lock.File()
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	return f.Sync()
}

// Path is the intent's file.
func (e *Entry) Path() string { return e.path }

// Done removes a finished (or fully undone) operation's intent.
func (e *Entry) Done() {
	if e == nil || e.path == "" {
		return
	}
	os.Remove(e.path)
	fsutil.SyncDir(filepath.Dir(e.path))
	e.lock.Release()
	e.path = ""
}

// Release lets go of the intent and leaves it in the journal, for the
// next recovery to finish (when this process could not).
func (e *Entry) Release() {
	if e == nil || e.path == "" {
		return
	}
	e.lock.Release()
	e.path = ""
}

// Listed is an intent on disk and whether its writer still runs.
type Listed struct {
	Intent
	Path string
	Live bool
}

// List reads the intents on disk: live ones (their writer holds the lock)
// and dead ones not yet finished. Files that do not parse are listed as
// dead with a zero Intent.
func (j *Journal) List() []Listed {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil
	}
	var out []Listed
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(j.dir, e.Name())
		_, held := lock.HolderOf(p, true)
		l := Listed{Path: p, Live: held}
		if data, err := os.ReadFile(p); err == nil {
			json.Unmarshal(data, &l.Intent)
		}
		out = append(out, l)
	}
	return out
}

// Claim takes a dead intent for finishing: nil (and no error) when its
// writer is alive or it is gone. The caller finishes it and calls Done,
// or Release to leave it to a later recovery. An intent whose file is
// empty or unreadable (its writer died writing it, before doing
// anything) is removed and nil returned.
func (j *Journal) Claim(path string) (*Entry, error) {
	h, err := lock.TryLock(path, true)
	if err != nil || h == nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		h.Release()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var in Intent
	if len(data) == 0 || json.Unmarshal(data, &in) != nil {
		os.Remove(path)
		h.Release()
		return nil, nil
	}
	return &Entry{Intent: in, path: path, lock: h}, nil
}

// SweepTemps removes intents their writers died writing (before they
// were in place, so before the operation did anything).
func (j *Journal) SweepTemps() {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		p := filepath.Join(j.dir, e.Name())
		if h, err := lock.TryLock(p, true); err == nil && h != nil {
			os.Remove(p)
			h.Release()
		}
	}
}
