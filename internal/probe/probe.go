// Package probe lets a test act as another user. The test binary, copied
// where anyone may run it, re-runs itself with other credentials and a
// list of steps, and reports each step's outcome: "ok", an errno name, or
// an HTTP status. Tests call Main first thing in TestMain.
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Env carries the steps to the re-run binary.
const Env = "THINROOT_TEST_PROBE"

// Step is one action of the other user.
type Step struct {
	// Op is one of mkdir rmdir write read readdir create unlink rename
	// symlink chmod connect get post whoami. write opens an existing file
	// (an action file) with O_TRUNC and writes Data; rename and symlink
	// take their second path from Data; connect, get and post use Socket.
	Op     string `json:"op"`
	Path   string `json:"path"`
	Data   string `json:"data,omitempty"`
	Socket string `json:"socket,omitempty"`
}

// Main runs the steps and exits when this process is a probe; otherwise it
// returns at once.
func Main() {
	spec := os.Getenv(Env)
	if spec == "" {
		return
	}
	var steps []Step
	if err := json.Unmarshal([]byte(spec), &steps); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(3)
	}
	res := make([]string, len(steps))
	for i, s := range steps {
		res[i] = s.run()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

func (s Step) run() string {
	var err error
	switch s.Op {
	case "whoami":
		gs, _ := os.Getgroups()
		return fmt.Sprintf("uid=%d groups=%v", os.Getuid(), gs)
	case "mkdir":
		err = os.Mkdir(s.Path, 0o755)
	case "rmdir":
		err = syscall.Rmdir(s.Path)
	case "write":
		var f *os.File
		if f, err = os.OpenFile(s.Path, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
			_, err = f.Write([]byte(s.Data))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	case "read":
		_, err = os.ReadFile(s.Path)
	case "readdir":
		_, err = os.ReadDir(s.Path)
	case "create":
		var f *os.File
		if f, err = os.OpenFile(s.Path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644); err == nil {
			f.Close()
		}
	case "unlink":
		err = syscall.Unlink(s.Path)
	case "rename":
		err = os.Rename(s.Path, s.Data)
	case "symlink":
		err = os.Symlink(s.Data, s.Path)
	case "chmod":
		err = os.Chmod(s.Path, 0o777)
	case "connect":
		var c net.Conn
		if c, err = net.Dial("unix", s.Socket); err == nil {
			c.Close()
		}
	case "get", "post":
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return net.Dial("unix", s.Socket)
		}}}
		var resp *http.Response
		if s.Op == "get" {
			resp, err = hc.Get("http://thinroot" + s.Path)
		} else {
			resp, err = hc.Post("http://thinroot"+s.Path, "application/json", strings.NewReader(s.Data))
		}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return strconv.Itoa(resp.StatusCode)
		}
	default:
		return "unknown op " + s.Op
	}
	var en syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &en):
		return ErrnoName(en)
	}
	return err.Error()
}

// ErrnoName names the errnos the tests expect.
func ErrnoName(e syscall.Errno) string {
	for _, n := range []struct {
		e syscall.Errno
		s string
	}{{syscall.EACCES, "EACCES"}, {syscall.EPERM, "EPERM"}, {syscall.EEXIST, "EEXIST"}, {syscall.EINVAL, "EINVAL"},
		{syscall.ENOENT, "ENOENT"}, {syscall.EBUSY, "EBUSY"}, {syscall.ENOTEMPTY, "ENOTEMPTY"}, {syscall.ENOSPC, "ENOSPC"},
		{syscall.EROFS, "EROFS"}, {syscall.EIO, "EIO"}, {syscall.ECONNREFUSED, "ECONNREFUSED"}} {
		if n.e == e {
			return n.s
		}
	}
	return fmt.Sprint(int(e))
}

var (
	once sync.Once
	bin  string
	err  error
)

// Run runs steps as uid/gid with the given supplementary groups and
// returns each step's outcome.
func Run(t testing.TB, uid, gid uint32, groups []uint32, steps []Step) []string {
	t.Helper()
	once.Do(func() {
		// Outside any test's temp dir: other users must reach it.
		dir, e := os.MkdirTemp("", "thinroot-probe-")
		if e == nil {
			e = os.Chmod(dir, 0o755)
		}
		if e == nil {
			bin = filepath.Join(dir, "probe")
			e = copyFile(os.Args[0], bin, 0o755)
		}
		err = e
	})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(steps)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), Env+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	out, e := cmd.Output()
	if e != nil {
		t.Fatalf("probe as %d: %v", uid, e)
	}
	var res []string
	if e := json.Unmarshal(out, &res); e != nil {
		t.Fatalf("probe output %q: %v", out, e)
	}
	return res
}

// PublicDir makes a directory every user can traverse (t.TempDir's are
// root's only), for mount points and sockets the other user must reach.
// The test's cleanup removes it.
func PublicDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "thinroot-public-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Remove deletes the copied binary; TestMain calls it after the tests.
func Remove() {
	if bin != "" {
		os.RemoveAll(filepath.Dir(bin))
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
