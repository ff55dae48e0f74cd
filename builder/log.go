package builder

import (
	"context"
	"io"
	"os"
	"sync"
)

// logStream is a build's log: an append-only file that followers read as
// it grows, plus an optional copy (build.log in the result directory).
type logStream struct {
	path string

	mu      sync.Mutex
	f       *os.File
	copy    io.Writer
	size    int64
	done    bool
	changed chan struct{}
}

func newLogStream(path string) (*logStream, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &logStream{path: path, f: f, changed: make(chan struct{})}, nil
}

// finishedLog is the log of a build from an earlier run of the daemon.
func finishedLog(path string) *logStream {
	l := &logStream{path: path, done: true, changed: make(chan struct{})}
	if fi, err := os.Stat(path); err == nil {
		l.size = fi.Size()
	}
	close(l.changed)
	return l
}

func (l *logStream) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(p), nil
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if l.copy != nil {
		l.copy.Write(p[:n])
	}
	l.wakeLocked()
	return n, err
}

func (l *logStream) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// tee copies what is written from now on to w as well (nil stops it).
func (l *logStream) tee(w io.Writer) {
	l.mu.Lock()
	l.copy = w
	l.mu.Unlock()
}

// phase wakes followers at a state change, so they can report it.
func (l *logStream) phase() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.wakeLocked()
	}
}

// close ends the log: followers stop once they have read it all.
func (l *logStream) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.done = true
	close(l.changed)
}

// snapshot returns the current size, whether the log is complete, and a
// channel closed at the next change.
func (l *logStream) snapshot() (int64, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.done, l.changed
}

// Size is how many bytes the log has now.
func (l *logStream) Size() int64 {
	n, _, _ := l.snapshot()
	return n
}

// Done tells whether the log is complete.
func (l *logStream) Done() bool {
	_, d, _ := l.snapshot()
	return d
}

// Follow copies the log from offset to w, waiting for more until the build
// ends (follow) or until what is there now is copied (!follow). It returns
// the offset reached.
func (l *logStream) Follow(ctx context.Context, offset int64, follow bool, w io.Writer, flush func()) (int64, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return offset, err
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	for {
		size, done, changed := l.snapshot()
		for offset < size {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), size-offset)], offset)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return offset, werr
				}
				offset += int64(n)
			}
			if err != nil && err != io.EOF {
				return offset, err
			}
			if n == 0 {
				break
			}
		}
		if flush != nil {
			flush()
		}
		if done || !follow {
			return offset, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return offset, ctx.Err()
		}
	}
}
