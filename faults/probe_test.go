package faults_test

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

// Another user: the test binary, copied where anyone may run it, runs a
// list of steps with other credentials and reports each one's outcome:
// "ok", an errno name, or an HTTP status.

const probeEnv = "THINROOT_FAULTS_PROBE"

type probeStep struct {
	Op     string `json:"op"` // mkdir rmdir write read readdir create unlink rename symlink chmod get post connect whoami
	Path   string `json:"path"`
	Data   string `json:"data,omitempty"`
	Socket string `json:"socket,omitempty"`
}

func probeMain() {
	spec := os.Getenv(probeEnv)
	if spec == "" {
		return
	}
	var steps []probeStep
	if err := json.Unmarshal([]byte(spec), &steps); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(3)
	}
	res := make([]string, len(steps))
	for i, s := range steps {
		res[i] = probeOne(s)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

func probeOne(s probeStep) string {
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
		err = writeAction(s.Path, s.Data)
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
		return errnoName(en)
	}
	return err.Error()
}

func errnoName(e syscall.Errno) string {
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
	probeOnce sync.Once
	probeBin  string
	probeErr  error
)

// probe runs steps as uid/gid with the given supplementary groups.
func probe(t testing.TB, uid, gid uint32, groups []uint32, steps []probeStep) []string {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "faults-probe-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err == nil {
			probeBin = filepath.Join(dir, "probe")
			err = copyFile(os.Args[0], probeBin, 0o755)
		}
		probeErr = err
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	spec, _ := json.Marshal(steps)
	cmd := exec.Command(probeBin, "-test.run=^$")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), probeEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe as %d: %v", uid, err)
	}
	var res []string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	return res
}

func removeProbe() {
	if probeBin != "" {
		os.RemoveAll(filepath.Dir(probeBin))
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
