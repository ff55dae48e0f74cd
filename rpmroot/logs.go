package rpmroot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Logs are mock's three main logs in a result directory, each also
// copied to a stream (the build's live log), in mock's formats:
//
//	state.log  "2006-01-02 15:04:05,000 - Start: chroot init"
//	root.log   "DEBUG thinroot:  <line>" (mock: "%(levelname)s %(filename)s:%(lineno)d:  %(message)s")
//	build.log  the line itself
//
// Each file's first line is "Mock Version: <version>". The files are
// owned by the build user, as mock leaves them.
type Logs struct {
	Dir string

	mu     sync.Mutex
	state  *os.File
	root   *os.File
	build  *os.File
	stream io.Writer
	rootW  *lineWriter
	buildW *lineWriter
}

// OpenLogs opens (appending: mock opens them "a+") or creates the logs in
// dir, owned by uid:gid. stream, if not nil, gets a copy of every line.
func OpenLogs(dir string, uid, gid int, version string, stream io.Writer) (*Logs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &Logs{Dir: dir, stream: stream}
	for _, f := range []struct {
		name string
		dst  **os.File
	}{{"state.log", &l.state}, {"root.log", &l.root}, {"build.log", &l.build}} {
		p := filepath.Join(dir, f.name)
		w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			l.Close()
			return nil, err
		}
		os.Chown(p, uid, gid)
		*f.dst = w
	}
	head := "Mock Version: " + version + " (thinroot)\n"
	l.state.WriteString(stamp() + " - " + head)
	l.root.WriteString("INFO thinroot:  " + head)
	l.build.WriteString(head)
	l.rootW = &lineWriter{emit: func(line string) { l.rootLine("DEBUG", line) }}
	l.buildW = &lineWriter{emit: l.buildLine}
	return l, nil
}

// stamp is Python logging's asctime.
func stamp() string {
	t := time.Now()
	return t.Format("2006-01-02 15:04:05") + fmt.Sprintf(",%03d", t.Nanosecond()/1e6)
}

// Start and Finish write mock's state lines.
func (l *Logs) Start(state string)  { l.stateLine("Start: " + state) }
func (l *Logs) Finish(state string) { l.stateLine("Finish: " + state) }

func (l *Logs) stateLine(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != nil {
		l.state.WriteString(stamp() + " - " + msg + "\n")
	}
	if l.stream != nil {
		io.WriteString(l.stream, msg+"\n")
	}
}

// Info writes an INFO line to root.log (and "INFO: msg" to the stream,
// as mock prints it).
func (l *Logs) Info(format string, args ...any) {
	l.rootLine("INFO", fmt.Sprintf(format, args...))
}

// Error writes an ERROR line to root.log.
func (l *Logs) Error(format string, args ...any) {
	l.rootLine("ERROR", fmt.Sprintf(format, args...))
}

func (l *Logs) rootLine(level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root != nil {
		l.root.WriteString(level + " thinroot:  " + msg + "\n")
	}
	if l.stream != nil {
		if level == "DEBUG" {
			io.WriteString(l.stream, msg+"\n")
		} else {
			io.WriteString(l.stream, level+": "+msg+"\n")
		}
	}
}

func (l *Logs) buildLine(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.build != nil {
		l.build.WriteString(msg + "\n")
	}
	if l.stream != nil {
		io.WriteString(l.stream, msg+"\n")
	}
}

// Root is a writer into root.log (the package manager's output), a DEBUG
// line per line written.
func (l *Logs) Root() io.Writer { return l.rootW }

// Build is a writer into build.log (rpmbuild's output).
func (l *Logs) Build() io.Writer { return l.buildW }

// BuildLine writes one line to build.log.
func (l *Logs) BuildLine(format string, args ...any) { l.buildLine(fmt.Sprintf(format, args...)) }

// Close flushes partial lines and closes the files.
func (l *Logs) Close() {
	if l.rootW != nil {
		l.rootW.flush()
	}
	if l.buildW != nil {
		l.buildW.flush()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range []**os.File{&l.state, &l.root, &l.build} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// lineWriter cuts what is written into lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// WriteHWInfo writes hw_info.log as mock's hw_info plugin does (rewritten
// each time): lscpu, free --human, and df of the root and the cache.
func WriteHWInfo(ctx context.Context, dir, root, cacheDir string, uid, gid int) error {
	var b bytes.Buffer
	run := func(argv ...string) {
		out, _ := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		b.Write(out)
	}
	b.WriteString("CPU info:\n")
	run("lscpu")
	b.WriteString("\n\nMemory:\n")
	run("free", "--human")
	b.WriteString("\n\nStorage (chroot, cache_topdir):\n")
	os.MkdirAll(cacheDir, 0o755)
	run("df", "-H", "-T", root, cacheDir)
	p := filepath.Join(dir, "hw_info.log")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Chown(p, uid, gid)
}
