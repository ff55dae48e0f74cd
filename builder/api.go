package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The HTTP/JSON API on a unix socket. Paths are versioned (/v1/...).
// Who calls is learned from the socket (SO_PEERCRED), never from the
// request: anyone who can connect may read; submitting and cancelling
// need root or the tree's group.

// Cred is a caller's identity from SO_PEERCRED plus its groups.
type Cred struct {
	PID, UID, GID int
	Groups        []int
}

type credKey struct{}

// CredFrom returns the caller's identity stored by the server.
func CredFrom(ctx context.Context) (Cred, bool) {
	c, ok := ctx.Value(credKey{}).(Cred)
	return c, ok
}

// peerCred reads SO_PEERCRED of a unix connection and the caller's
// supplementary groups from /proc.
func peerCred(c net.Conn) (Cred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Cred{}, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var ucred *unix.Ucred
	var serr error
	raw.Control(func(fd uintptr) { ucred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if serr != nil {
		return Cred{}, serr
	}
	cr := Cred{PID: int(ucred.Pid), UID: int(ucred.Uid), GID: int(ucred.Gid)}
	if data, err := os.ReadFile("/proc/" + strconv.Itoa(cr.PID) + "/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
				for _, g := range strings.Fields(rest) {
					if n, err := strconv.Atoi(g); err == nil {
						cr.Groups = append(cr.Groups, n)
					}
				}
			}
		}
	}
	return cr, nil
}

// MayChange tells whether a caller may submit and cancel: root, or a
// member of group gid.
func (c Cred) MayChange(gid int) bool {
	if c.UID == 0 {
		return true
	}
	if gid <= 0 {
		return false
	}
	if c.GID == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// Server serves the API.
type Server struct {
	B *Builder
	// GID is the group whose members may submit and cancel (besides root).
	GID int
	// Stats, if set, answers GET /v1/pools.
	Stats func() any
	// Configs, if set, answers GET /v1/configs.
	Configs func() any
	// Metrics, if set, answers GET /metrics (Prometheus's text format).
	Metrics http.Handler
	// Volumes, if set, runs a volume command (POST /v1/volumes) for a
	// caller; it decides who may run what, and returns ErrForbidden or
	// ErrBadRequest to refuse.
	Volumes func(ctx context.Context, cr Cred, argv []string) (VolumeResult, error)
	Log     *slog.Logger
}

// Routes are the API's endpoints, as "METHOD /path" patterns; the API's
// man page (thinroot-api(7)) documents each, and a test keeps the two in
// step.
var Routes = []string{
	"GET /v1/builds",
	"POST /v1/builds",
	"GET /v1/builds/{id}",
	"GET /v1/builds/{id}/log",
	"GET /v1/builds/{id}/events",
	"GET /v1/builds/{id}/wait",
	"POST /v1/builds/{id}/cancel",
	"POST /v1/builds/prune",
	"POST /v1/volumes",
	"GET /v1/pools",
	"GET /v1/configs",
	"GET /metrics",
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	handlers := map[string]http.HandlerFunc{
		"GET /v1/builds":              s.list,
		"POST /v1/builds":             s.submit,
		"GET /v1/builds/{id}":         s.show,
		"GET /v1/builds/{id}/log":     s.logText,
		"GET /v1/builds/{id}/events":  s.events,
		"GET /v1/builds/{id}/wait":    s.wait,
		"POST /v1/builds/{id}/cancel": s.cancel,
		"POST /v1/builds/prune":       s.prune,
		"POST /v1/volumes":            s.volumes,
		"GET /v1/pools": func(w http.ResponseWriter, r *http.Request) {
			if s.Stats == nil {
				writeJSON(w, http.StatusOK, []any{})
				return
			}
			writeJSON(w, http.StatusOK, s.Stats())
		},
		"GET /metrics": func(w http.ResponseWriter, r *http.Request) {
			if s.Metrics == nil {
				http.NotFound(w, r)
				return
			}
			s.Metrics.ServeHTTP(w, r)
		},
		"GET /v1/configs": func(w http.ResponseWriter, r *http.Request) {
			if s.Configs == nil {
				writeJSON(w, http.StatusOK, []any{})
				return
			}
			writeJSON(w, http.StatusOK, s.Configs())
		},
	}
	mux := http.NewServeMux()
	for _, r := range Routes {
		mux.HandleFunc(r, handlers[r])
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s (the API lives under /v1/)", r.Method, r.URL.Path))
	})
	return mux
}

// Serve listens on a unix socket at path (mode 0666, group gid) until
// ctx ends.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := Listen(path, s.GID)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cr, err := peerCred(c)
			if err != nil {
				// No identity: the handlers treat the caller as nobody.
				cr = Cred{UID: -1, GID: -1}
			}
			return context.WithValue(ctx, credKey{}, cr)
		},
		ErrorLog: nil,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Listen makes the socket: a stale one (nobody answering) is replaced, a
// live one is refused; the mode is 0666 with group gid: everyone may
// connect and read, and what a caller may change is decided by its
// SO_PEERCRED credentials, never by the socket's mode.
func Listen(path string, gid int) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s: another daemon is serving it", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chown(path, 0, max(gid, 0)); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// APIError is the body of every error answer.
type APIError struct {
	Error string `json:"error"`
	// Kind says what kind of refusal it is, for clients that act on it
	// (one of the Kind constants); absent for other errors.
	Kind string `json:"kind,omitempty"`
}

// Kinds of error answers.
const (
	KindBadRequest      = "bad-request"      // the request is malformed or names something invalid
	KindUnknownConfig   = "unknown-config"   // the daemon serves no such config
	KindUnknownSnapshot = "unknown-snapshot" // the config has no such snapshot
	KindNoBuild         = "no-build"         // no build has that id
	KindFinished        = "finished"         // the build has already ended
	KindForbidden       = "forbidden"        // the caller may not do this
)

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, APIError{Error: err.Error(), Kind: kindOf(err)})
}

func kindOf(err error) string {
	switch {
	case errors.Is(err, ErrUnknownConfig):
		return KindUnknownConfig
	case errors.Is(err, ErrUnknownSnapshot):
		return KindUnknownSnapshot
	case errors.Is(err, ErrBadRequest):
		return KindBadRequest
	case errors.Is(err, ErrNoBuild):
		return KindNoBuild
	case errors.Is(err, ErrFinished):
		return KindFinished
	case errors.Is(err, ErrForbidden):
		return KindForbidden
	}
	return ""
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoBuild):
		return http.StatusNotFound
	case errors.Is(err, ErrFinished):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func (s *Server) mayChange(w http.ResponseWriter, r *http.Request) (Cred, bool) {
	cr, ok := CredFrom(r.Context())
	if !ok {
		// No identity reached the handler: nobody, never root (the zero
		// Cred is uid 0).
		cr = Cred{UID: -1, GID: -1}
	}
	if !cr.MayChange(s.GID) {
		writeJSON(w, http.StatusForbidden, APIError{Kind: KindForbidden,
			Error: fmt.Sprintf("uid %d may not change anything: only root and members of group %d may", cr.UID, s.GID)})
		return cr, false
	}
	return cr, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.B.List())
}

// maxRequest bounds a submitted request body.
const maxRequest = 64 << 10

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	cr, ok := s.mayChange(w, r)
	if !ok {
		return
	}
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: request body: %v", ErrBadRequest, err))
		return
	}
	if dec.More() {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: request body: more than one JSON value", ErrBadRequest))
		return
	}
	b, err := s.B.Submit(req, cr.UID)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

// prune removes the finished builds a retention (the body) does not keep.
func (s *Server) prune(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.mayChange(w, r); !ok {
		return
	}
	var ret Retention
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ret); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: request body: %v", ErrBadRequest, err))
		return
	}
	if ret.IsZero() {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: say what to prune: max_age, max_count or max_bytes", ErrBadRequest))
		return
	}
	out, err := s.B.Prune(r.Context(), ret)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	if out == nil {
		out = []Pruned{}
	}
	writeJSON(w, http.StatusOK, out)
}

// VolumeCommand is a volume command a caller asks the daemon to run: the
// CLI's words and arguments after "thinroot".
type VolumeCommand struct {
	Argv []string `json:"argv"`
}

// VolumeResult is how it went: what the CLI printed and its exit status.
type VolumeResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

func (s *Server) volumes(w http.ResponseWriter, r *http.Request) {
	cr, ok := CredFrom(r.Context())
	if !ok {
		cr = Cred{UID: -1, GID: -1}
	}
	if s.Volumes == nil {
		writeErr(w, http.StatusNotFound, errors.New("this daemon runs no volume commands"))
		return
	}
	var vc VolumeCommand
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&vc); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: request body: %v", ErrBadRequest, err))
		return
	}
	res, err := s.Volumes(r.Context(), cr, vc.Argv)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	b, err := s.B.Get(r.PathValue("id"))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	cr, ok := s.mayChange(w, r)
	if !ok {
		return
	}
	if err := s.B.Cancel(r.PathValue("id"), cr.UID); err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	b, _ := s.B.Get(r.PathValue("id"))
	writeJSON(w, http.StatusAccepted, b)
}

// wait answers when the build has ended, with its final record.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	b, err := s.B.WaitFor(r.Context(), r.PathValue("id"))
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// logText serves the raw log; ?follow=1 keeps streaming until the build
// ends, ?offset=N starts later.
func (s *Server) logText(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ls, err := s.B.Log(id)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	offset, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fl, _ := w.(http.Flusher)
	ls.Follow(r.Context(), max(offset, 0), follow, w, func() {
		if fl != nil {
			fl.Flush()
		}
	})
}

// Event is one line of the events stream.
type Event struct {
	Type  string    `json:"type"` // "state", "log" or "end"
	State string    `json:"state,omitempty"`
	At    time.Time `json:"at,omitempty"`
	Data  string    `json:"data,omitempty"`
	Build *Build    `json:"build,omitempty"`
}

// events streams a build as NDJSON: its state changes and its log as
// they happen, then the final record.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ls, err := s.B.Log(id)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var offset int64
	phases := 0
	ctx := r.Context()
	for {
		ch := s.B.Changed()
		rec, err := s.B.Get(id)
		if err != nil {
			return
		}
		for ; phases < len(rec.Phases); phases++ {
			p := rec.Phases[phases]
			enc.Encode(Event{Type: "state", State: p.State, At: p.At})
		}
		var buf strings.Builder
		offset, _ = ls.Follow(ctx, offset, false, &buf, nil)
		if buf.Len() > 0 {
			enc.Encode(Event{Type: "log", Data: buf.String()})
		}
		if Final(rec.State) && ls.Done() && offset >= ls.Size() {
			enc.Encode(Event{Type: "end", Build: &rec})
			if fl != nil {
				fl.Flush()
			}
			return
		}
		if fl != nil {
			fl.Flush()
		}
		_, _, logChanged := ls.snapshot()
		select {
		case <-ch:
		case <-logChanged:
		case <-ctx.Done():
			return
		}
	}
}
