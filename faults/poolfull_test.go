package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// TestPoolFull fills a small pool from a workdir, through the daemon
// (`thinroot serve`), until writes fail. The daemon stays up, the other
// workdirs stay readable, the stats say full, a new mkdir gets ENOSPC
// with the reason in the log; once the filler is removed everything works
// again and every volume's filesystem is clean.
func TestPoolFull(t *testing.T) {
	r := faults.Record(t, "pool-full", "fill, refuse, recover", hostEnv.Name)
	env := hostEnv
	env.PoolSize, env.VolumeSize = 512<<20, 1<<30
	w := faults.NewWorld(t, env, faults.WorldOptions{})
	w.Init(0)
	mnt := filepath.Join(probe.PublicDir(t), "tree")
	os.Mkdir(mnt, 0o755)
	s := startServer(t, w, "serve", mnt)
	_, snaps := treePaths(mnt, w)
	stats := filepath.Join(mnt, "pools", w.Pool, "stats")
	byFile := filepath.Join(mnt, "workdirs", faults.BystanderRoot+"."+faults.BystanderExt, "root", "kept")
	kept, err := os.ReadFile(byFile)
	r.Must(err == nil, "the bystander's file through the tree: %v", err)

	for run := 0; run < faults.Runs(); run++ {
		r.Run()
		// The bystander has nothing left to write when the pool fills: its
		// reads must keep working, and it is not the one being filled.
		r.Must(syncFS(filepath.Dir(byFile)) == nil, "syncfs of the bystander")
		filler := filepath.Join(snaps, lvm.PostInit, "filler")
		r.Must(os.Mkdir(filler, 0o755) == nil, "mkdir filler")
		root := filepath.Join(mnt, "workdirs", w.Root+".filler")
		dd := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(root, "fill"), "bs=1M", "conv=fsync")
		out, err := dd.CombinedOutput()
		r.Check(err != nil, "dd filled a 1 GiB volume in a 512 MiB pool without an error:\n%s", out)
		t.Logf("dd stopped: %v: %s", err, lastLine(string(out)))

		// The daemon is up and says full.
		r.Check(!s.exited(), "the daemon died when the pool filled up")
		lvmtest.WaitFor(t, 10*time.Second, "stats to say full", func() bool {
			return keyValue(readOr(stats), "status") == lvm.StatusFull
		})
		r.Check(true, "")
		var js map[string]any
		r.Check(json.Unmarshal([]byte(readOr(filepath.Join(mnt, "pools", w.Pool, "stats.json"))), &js) == nil && js["status"] == "full",
			"stats.json does not say full: %v", js)
		r.Check(apiPoolStatus(t, s.socket, w.Pool) == lvm.StatusFull, "the API does not say the pool is full")
		// Other workdirs stay readable.
		got, err := os.ReadFile(byFile)
		r.Check(err == nil && string(got) == string(kept), "the bystander's file while the pool is full: %q %v", got, err)
		// A new workdir is refused with ENOSPC and a reason in the log.
		err = os.Mkdir(filepath.Join(snaps, lvm.PostInit, "more"), 0o755)
		r.Check(errors.Is(err, syscall.ENOSPC), "mkdir in a full pool: %v, want ENOSPC", err)
		log := s.logText()
		r.Check(strings.Contains(log, "refusing a new volume") && strings.Contains(log, "thin pool "+w.Pool),
			"the daemon's log gives no reason for the refusal")

		// Free the space: everything works again.
		r.Check(syscall.Rmdir(filler) == nil, "rmdir filler")
		lvmtest.WaitFor(t, 10*time.Second, "stats to leave full", func() bool {
			return keyValue(readOr(stats), "status") == lvm.StatusOK
		})
		r.Check(true, "")
		r.Check(os.Mkdir(filepath.Join(snaps, lvm.PostInit, "more"), 0o755) == nil, "mkdir after the filler went")
		more := filepath.Join(mnt, "workdirs", w.Root+".more")
		err = writeSynced(filepath.Join(more, "root", "after"), "ok")
		r.Check(err == nil, "write and fsync into a new workdir: %v", err)
		// Written through to the pool, metadata and all: anything of the
		// bystander's left dirty (an fsync puts metadata in the journal;
		// its writeback in place comes later) could reach the pool during
		// the next run's fill, where every thin volume's writes fail
		// (dm-thin with --errorwhenfull does the same) and ext4 aborts
		// its journal.
		err = writeSynced(filepath.Join(filepath.Dir(byFile), "after-full"), "ok")
		r.Check(err == nil, "write and fsync into the bystander after the pool was full: %v", err)
		r.Check(syscall.Rmdir(filepath.Join(snaps, lvm.PostInit, "more")) == nil, "rmdir more")
		r.Check(!s.exited(), "the daemon died")
	}

	// Every volume's filesystem is clean: workdirs are unmounted for the
	// check and mounted again after.
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitExit(15 * time.Second)
	m := w.NewManagerFor()
	for _, p := range m.State().Pools {
		for _, cs := range p.Configs {
			for _, wd := range cs.Workdirs {
				r.Check(mount.Unmount(wd.Mountpoint, false) == nil, "unmount %s for fsck", wd.Mountpoint)
			}
		}
	}
	if w.Env.Name == "btrfs" {
		// The volumes are subvolumes of one filesystem: scrub it.
		out, err := exec.Command("btrfs", "scrub", "start", "-B", filepath.Join(w.PoolsDir(), w.Pool)).CombinedOutput()
		r.Check(err == nil, "btrfs scrub of the pool: %v\n%s", err, out)
	} else {
		imgs, _ := filepath.Glob(filepath.Join(w.PoolsDir(), w.Pool, "volumes", "*.img"))
		r.Check(len(imgs) >= 3, "only %d volume images", len(imgs))
		for _, img := range imgs {
			out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
			r.Check(err == nil, "e2fsck -fn %s: %v\n%s", filepath.Base(img), err, out)
		}
	}
	w.CheckInvariants(w.Restart(), r)
}

// writeSynced writes a file and syncs its whole filesystem (syncfs also
// writes back the metadata the journal has already committed), so that
// nothing of that volume is left to write when it returns.
func writeSynced(path, text string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Syncfs(int(f.Fd()))
}

// syncFS syncs the filesystem that holds path.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

func readOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func keyValue(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, key+": "); ok {
			return v
		}
	}
	return ""
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}

// apiClient talks HTTP over the daemon's unix socket.
func apiClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
}

func apiPoolStatus(t *testing.T, sock, pool string) string {
	resp, err := apiClient(sock).Get("http://thinroot/v1/pools")
	if err != nil {
		t.Errorf("GET /v1/pools: %v", err)
		return ""
	}
	defer resp.Body.Close()
	var ps []lvm.Stats
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		t.Errorf("GET /v1/pools: %v", err)
		return ""
	}
	for _, p := range ps {
		if p.Pool == pool {
			return p.Status
		}
	}
	return ""
}
