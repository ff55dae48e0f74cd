package lvm

import (
	"context"
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
	"github.com/thinroot/thinroot/internal/mount"
)

// An intent records a multi-step operation while it runs, so that if the
// process dies half way the next Manager to start (in any process) can
// finish the job: operations that create volumes are rolled back,
// operations that remove them are rolled forward. The running process
// holds a lock on its intent file; a free lock means its writer is dead.
//
// Intents are not state: they exist only while an operation runs and say
// nothing that is not also on disk in the backend. While one is live its
// volumes are hidden from the model, so nobody sees a half-made object.

type intent struct {
	Op      string   `json:"op"`
	Root    string   `json:"root"`
	Pool    string   `json:"pool"`
	Backend string   `json:"backend"` // key in Options.Backends
	Forward bool     `json:"forward"` // true: finish removing; false: undo creating
	Volumes []string `json:"volumes"` // in creation order
	Mounts  []string `json:"mounts,omitempty"`
	Frozen  []string `json:"frozen,omitempty"`
	// Records are mock's current-snapshot records the operation changes,
	// declared before it changes any: rolling back puts the old content
	// back, finishing writes the new one.
	Records []recordChange `json:"records,omitempty"`
	// RemovePool (scrub) removes the pool once no thin volume of anyone
	// is left in it, as the finished operation would.
	RemovePool bool      `json:"remove_pool,omitempty"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`

	path string
	lock *lock.Held
}

// recordChange is one record an operation changes; nil means no file.
type recordChange struct {
	Path string  `json:"path"`
	Old  *string `json:"old"`
	New  *string `json:"new"`
}

// changeRecord declares that ext's record of c will name lv ("" removes
// it), capturing what it holds now.
func changeRecord(c *Config, ext, lv string) recordChange {
	rc := recordChange{Path: c.SnapinfoPath(ext)}
	if b, err := os.ReadFile(rc.Path); err == nil {
		old := string(b)
		rc.Old = &old
	}
	if lv != "" {
		rc.New = &lv
	}
	return rc
}

// setRecord puts a record's content in place (nil removes it), atomically.
func setRecord(path string, content *string) error {
	if content == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return fsutil.WriteFileAtomic(path, []byte(*content), 0o644)
}

func (m *Manager) intentsDir() string { return filepath.Join(m.opts.StateDir, "intents") }

// tempPrefix names an intent being written; Recover ignores it while its
// writer holds it and sweeps it once the lock is free (its writer died
// before the intent was in place, so nothing was done yet).
const tempPrefix = ".new-"

// begin writes and locks an intent.
func (m *Manager) begin(in *intent) error {
	dir := m.intentsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	in.PID, in.Started = os.Getpid(), time.Now().UTC()
	// Write and lock it under a name Recover ignores, then rename it into
	// place: the lock belongs to the open file, not the name, so nobody
	// can ever see it unlocked or half written.
	var f *os.File
	for attempt := 0; ; attempt++ {
		var err error
		if f, err = os.CreateTemp(dir, tempPrefix+in.Op+"-*"); err != nil {
			return fmt.Errorf("record intent: %w", err)
		}
		if ok, err := lock.TryLockOpen(f); !ok {
			f.Close()
			os.Remove(f.Name())
			return fmt.Errorf("lock intent: %v", err)
		}
		// Between its creation and our lock the file was nobody's, and a
		// recovery may have swept it as abandoned: start over then.
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Nlink == 0 && attempt < 10 {
			f.Close()
			continue
		}
		break
	}
	in.lock = lock.Adopt(f)
	in.path = strings.TrimSuffix(filepath.Join(dir, strings.TrimPrefix(filepath.Base(f.Name()), ".new-")), ".json") + ".json"
	if err := m.writeIntent(in); err != nil {
		in.lock.Release()
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), in.path); err != nil {
		in.lock.Release()
		os.Remove(f.Name())
		return fmt.Errorf("record intent: %w", err)
	}
	return nil
}

// save records progress (volumes created so far, frozen mounts).
func (m *Manager) save(in *intent) error { return m.writeIntent(in) }

// writeIntent rewrites the intent in place through the locked descriptor.
func (m *Manager) writeIntent(in *intent) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	f := in.lock.File()
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	return f.Sync()
}

// done removes a finished operation's intent.
func (m *Manager) done(in *intent) {
	if in == nil || in.path == "" {
		return
	}
	os.Remove(in.path)
	fsutil.SyncDir(filepath.Dir(in.path))
	in.lock.Release()
	in.path = ""
}

// intentOnDisk is an intent file and whether its writer still runs.
type intentOnDisk struct {
	intent
	live bool
}

// intents lists the intents on disk: live ones (their writer holds the
// lock) and dead ones not yet recovered.
func (m *Manager) intents() []intentOnDisk {
	ents, err := os.ReadDir(m.intentsDir())
	if err != nil {
		return nil
	}
	var out []intentOnDisk
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(m.intentsDir(), e.Name())
		_, held := lock.HolderOf(p, true)
		var in intent
		if data, err := os.ReadFile(p); err == nil && json.Unmarshal(data, &in) == nil {
			out = append(out, intentOnDisk{in, held})
		}
	}
	return out
}

// Recover finishes the operations of processes that died half way. It is
// safe to run at any time, from any process: live operations are skipped,
// and so are dead ones of a config whose lock someone holds (the holder
// recovers them when it takes the lock; meanwhile their volumes are
// hidden). Refresh runs it too, so a long-running daemon finishes what a
// killed command left.
func (m *Manager) Recover(ctx context.Context) error {
	err := m.recoverDead(ctx, "", false)
	m.mu.Lock()
	cfgs := make([]*Config, 0, len(m.configs))
	for _, c := range m.configs {
		cfgs = append(cfgs, c)
	}
	m.mu.Unlock()
	for _, c := range cfgs {
		if l, lerr := lock.TryLock(m.configLockPath(c.Root), true); lerr == nil && l != nil {
			sweepSnapinfoTemps(c)
			l.Release()
		}
	}
	return err
}

// recoverDead recovers the dead intents of root (every root when ""). The
// caller holds root's config lock when haveLock is set; otherwise each
// intent is recovered only if its config lock is free, so recovery never
// runs beside an operation on the same config.
func (m *Manager) recoverDead(ctx context.Context, root string, haveLock bool) error {
	ents, err := os.ReadDir(m.intentsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(m.intentsDir(), e.Name())
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if h, err := lock.TryLock(p, true); err == nil && h != nil {
				os.Remove(p)
				h.Release()
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		h, err := lock.TryLock(p, true)
		if err != nil || h == nil {
			continue // its writer is alive
		}
		if err := m.recoverLocked(ctx, p, root, haveLock); err != nil {
			errs = append(errs, err)
		}
		h.Release()
	}
	return errors.Join(errs...)
}

// recoverLocked recovers one dead intent whose lock the caller holds.
func (m *Manager) recoverLocked(ctx context.Context, path, root string, haveLock bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var in intent
	if len(data) > 0 && json.Unmarshal(data, &in) == nil {
		if root != "" && in.Root != root {
			return nil
		}
		if !haveLock {
			cl, err := lock.TryLock(m.configLockPath(in.Root), true)
			if err != nil {
				return err
			}
			if cl == nil {
				return nil // an operation on the config runs; it recovers this
			}
			defer cl.Release()
		}
	}
	return m.recoverOne(ctx, path)
}

func (m *Manager) recoverOne(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var in intent
	if len(data) == 0 || json.Unmarshal(data, &in) != nil {
		// Died before the intent was written: nothing was done yet.
		os.Remove(path)
		return nil
	}
	be, ok := m.opts.Backends[in.Backend]
	if !ok {
		m.log.Warn("cannot recover operation: its backend is not configured here",
			"op", in.Op, "root", in.Root, "backend", in.Backend, "intent", path)
		return nil
	}
	how := "rolling back"
	if in.Forward {
		how = "finishing"
	}
	m.log.Warn(how+" an interrupted operation", "op", in.Op, "root", in.Root,
		"pid", in.PID, "started", in.Started, "volumes", in.Volumes)
	ctx = context.WithoutCancel(ctx)
	for _, dir := range in.Frozen {
		mount.Thaw(dir)
	}
	var errs []error
	for _, mp := range in.Mounts {
		if err := mount.Unmount(mp, true); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(in.Volumes) - 1; i >= 0; i-- {
		err := be.Remove(ctx, in.Pool, in.Volumes[i])
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	for i := len(in.Records) - 1; i >= 0; i-- {
		rc := in.Records[i]
		content := rc.Old
		if in.Forward {
			content = rc.New
		}
		if err := setRecord(rc.Path, content); err != nil {
			errs = append(errs, fmt.Errorf("record %s: %w", rc.Path, err))
		}
	}
	if in.Forward && in.RemovePool && len(errs) == 0 {
		if _, err := m.removeEmptyPool(ctx, be, in.Pool); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("recover %s of %s: %w", in.Op, in.Root, errors.Join(errs...))
	}
	os.Remove(path)
	// Every volume an intent names is gone now, whichever way it went;
	// the cached report must not offer them to the next operation.
	m.patch(in.Pool, nil, in.Volumes...)
	m.invalidate(in.Pool)
	return nil
}
