package faults_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/internal/probe"
	"github.com/thinroot/thinroot/internal/testguard"
	"github.com/thinroot/thinroot/lvm"
)

const nobody = 65534

// secureWorld is a daemon (`thinroot serve --group 4242`) over a world
// with a workdir, a snapshot and a finished build, so the tree has every
// kind of node.
func secureWorld(t *testing.T) (*faults.World, *server) {
	w := faults.NewWorld(t, hostEnv, faults.WorldOptions{})
	w.Init(0)
	mnt := filepath.Join(probe.PublicDir(t), "tree")
	os.Mkdir(mnt, 0o755)
	s := startServer(t, w, "serve", mnt)
	_, snaps := treePaths(mnt, w)
	if err := os.Mkdir(filepath.Join(snaps, lvm.PostInit, "mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := build(testguard.Deadline(t), s.socket, w.Root, "b1"); err != nil {
		t.Fatal(err)
	}
	return w, s
}

// TestOutsidersChangeNothing: a user outside the tree's group reads every
// file and directory of the tree and the API's read endpoints, and gets
// EACCES (EPERM for chmod) for every change through the tree and 403 for
// every change through the socket (which everyone may connect to: mode
// 0666, the handler decides by the caller's credentials). A member of the
// group may do the same changes.
func TestOutsidersChangeNothing(t *testing.T) {
	r := faults.Record(t, "security", "outsiders read, change nothing (tree and socket)", hostEnv.Name)
	w, s := secureWorld(t)
	mnt := s.mnt
	config, snaps := treePaths(mnt, w)
	mine := filepath.Join(snaps, lvm.PostInit, "mine")
	byConfig := filepath.Join(mnt, "pools", w.Pool, "configs", faults.BystanderRoot)
	before := w.Picture(w.NewManagerFor())

	reads := []probe.Step{
		{Op: "readdir", Path: mnt}, {Op: "readdir", Path: snaps}, {Op: "readdir", Path: mine},
		{Op: "readdir", Path: filepath.Join(mnt, "builds")}, {Op: "readdir", Path: filepath.Join(mnt, "workdirs")},
		{Op: "read", Path: filepath.Join(mnt, "README")},
		{Op: "read", Path: filepath.Join(mnt, "pools", w.Pool, "stats")},
		{Op: "read", Path: filepath.Join(mnt, "pools", w.Pool, "stats.json")},
		{Op: "read", Path: filepath.Join(config, "state")}, {Op: "read", Path: filepath.Join(config, "current")},
		{Op: "read", Path: filepath.Join(snaps, lvm.PostInit, ".info")}, {Op: "read", Path: filepath.Join(mine, ".info")},
	}
	changes := []probe.Step{
		{Op: "mkdir", Path: filepath.Join(snaps, lvm.PostInit, "theirs")},
		{Op: "rmdir", Path: mine},
		{Op: "rmdir", Path: filepath.Join(byConfig, "snapshots", faults.BystanderSnap)},
		{Op: "write", Path: filepath.Join(mine, "snapshot"), Data: "theirs\n"},
		{Op: "write", Path: filepath.Join(config, "current"), Data: lvm.PostInit + "\n"},
		{Op: "create", Path: filepath.Join(snaps, "file")},
		{Op: "create", Path: filepath.Join(mnt, "file")},
		{Op: "unlink", Path: filepath.Join(mine, ".info")},
		{Op: "rename", Path: filepath.Join(snaps, lvm.PostInit, ".info"), Data: filepath.Join(snaps, lvm.PostInit, "x")},
		{Op: "symlink", Path: filepath.Join(snaps, "link"), Data: "/etc"},
		{Op: "chmod", Path: filepath.Join(mnt, "pools", w.Pool, "stats")},
	}
	got := probe.Run(t, nobody, nobody, []uint32{}, append(append([]probe.Step{}, reads...), changes...))
	for i, st := range append(append([]probe.Step{}, reads...), changes...) {
		r.Run()
		want := "ok"
		if i >= len(reads) {
			want = "EACCES"
			if st.Op == "chmod" {
				want = "EPERM"
			}
		}
		r.Check(got[i] == want, "outsider %s %s: %s, want %s", st.Op, strings.TrimPrefix(st.Path, mnt), got[i], want)
	}

	// The socket: open to everyone; the handler refuses changes.
	got = probe.Run(t, nobody, nobody, []uint32{}, []probe.Step{{Op: "connect", Socket: s.socket}})
	r.Run()
	r.Check(got[0] == "ok", "an outsider connecting to the 0666 socket: %s, want ok", got[0])
	buildBody := fmt.Sprintf(`{"config": %q, "command": ["/bin/true"], "uniqueext": "theirs"}`, w.Root)
	api := []probe.Step{
		{Op: "get", Path: "/v1/builds", Socket: s.socket}, {Op: "get", Path: "/v1/pools", Socket: s.socket},
		{Op: "post", Path: "/v1/builds", Data: buildBody, Socket: s.socket},
		{Op: "post", Path: "/v1/builds/" + firstBuild(t, s.socket) + "/cancel", Socket: s.socket},
		{Op: "post", Path: "/v1/builds/prune", Data: `{"max_count": 1}`, Socket: s.socket},
	}
	got = probe.Run(t, nobody, nobody, []uint32{}, api)
	r.Runs(len(api))
	r.Check(reflect.DeepEqual(got, []string{"200", "200", "403", "403", "403"}), "outsider through the socket: %v, want 200 200 403 403 403", got)

	// Nothing changed.
	after := w.Picture(w.NewManagerFor())
	r.Check(after.String() == before.String(), "an outsider changed something:\nbefore %s\nafter  %s", before, after)

	// A member of the group may.
	member := []probe.Step{
		{Op: "mkdir", Path: filepath.Join(snaps, lvm.PostInit, "theirs")},
		{Op: "write", Path: filepath.Join(snaps, lvm.PostInit, "theirs", "snapshot"), Data: "theirsnap\n"},
		{Op: "rmdir", Path: filepath.Join(snaps, lvm.PostInit, "theirs")},
		{Op: "rmdir", Path: filepath.Join(snaps, "theirsnap")},
		{Op: "post", Path: "/v1/builds", Data: buildBody, Socket: s.socket},
	}
	got = probe.Run(t, nobody, nobody, []uint32{treeGID}, member)
	r.Runs(len(member))
	r.Check(reflect.DeepEqual(got, []string{"ok", "ok", "ok", "ok", "201"}), "member: %v, want ok ok ok ok 201", got)
}

func firstBuild(t *testing.T, sock string) string {
	resp, err := apiClient(sock).Get("http://thinroot/v1/builds")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var bs []builder.Build
	json.NewDecoder(resp.Body).Decode(&bs)
	if len(bs) == 0 {
		t.Fatal("no build")
	}
	return bs[0].ID
}

// TestSymlinksStayInside walks the whole tree and checks every symlink:
// a relative one resolves inside the tree, an absolute one is a workdir's
// mounted root or a build's result directory, nothing else on the host.
func TestSymlinksStayInside(t *testing.T) {
	r := faults.Record(t, "security", "every symlink in the tree points inside thinroot's own paths", hostEnv.Name)
	w, s := secureWorld(t)
	st := w.NewManagerFor().State()
	allowed := map[string]bool{}
	for _, p := range st.Pools {
		for _, cs := range p.Configs {
			for _, wd := range cs.Workdirs {
				allowed[wd.Mountpoint] = true
			}
		}
	}
	resp, err := apiClient(s.socket).Get("http://thinroot/v1/builds")
	r.Must(err == nil, "list builds: %v", err)
	var bs []builder.Build
	json.NewDecoder(resp.Body).Decode(&bs)
	resp.Body.Close()
	for _, b := range bs {
		// Where mock keeps a unique-ext's results, whatever the record says.
		allowed[filepath.Join(w.Config.WorkdirDir(b.UniqueExt), "result")] = true
	}
	links := 0
	err = filepath.WalkDir(s.mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		links++
		tg, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(tg) {
			r.Check(allowed[tg] && filepath.Clean(tg) == tg, "%s -> %s: not a workdir root or a result directory",
				strings.TrimPrefix(p, s.mnt), tg)
			_, serr := os.Stat(tg)
			r.Check(serr == nil, "%s -> %s dangles: %v", strings.TrimPrefix(p, s.mnt), tg, serr)
		} else {
			abs := filepath.Join(filepath.Dir(p), tg)
			r.Check(strings.HasPrefix(abs, s.mnt+"/"), "%s -> %s leaves the tree", strings.TrimPrefix(p, s.mnt), tg)
		}
		return nil
	})
	r.Must(err == nil, "walk: %v", err)
	r.Runs(links)
	// configs/ x2, workdirs/ x2 (keep, mine), a root link per workdir,
	// the build's result.
	r.Check(links >= 7, "walked only %d symlinks", links)
}

// TestBuildIsolation: a build sees its own processes only, no other
// workdir (not the bystander's file, not its mount), not the daemon's
// socket, and none of the host's other mounts (its own are /, /proc,
// /sys read-only as mock mounts it, /dev, /tmp and its binds); with or
// without the network.
func TestBuildIsolation(t *testing.T) {
	r := faults.Record(t, "security", "a build sees no host process, other workdir or the socket", hostEnv.Name)
	w, s := secureWorld(t)
	byRoot := w.By.ChrootDir(faults.BystanderExt)
	sockName := filepath.Base(s.socket)
	script := fmt.Sprintf(`echo procs=$(ls /proc | grep -c '^[0-9][0-9]*$')
echo pid1=$(tr '\0' '\n' < /proc/1/cmdline | sed -n 2p)
test -e %[1]q && echo SOCKET-VISIBLE
test -e %[2]q && echo WORKDIR-VISIBLE
test -e %[3]q && echo STATE-VISIBLE
find / -xdev -name kept 2>/dev/null | sed 's/^/FOUND /'
grep -E %[4]q /proc/self/mountinfo | sed 's/^/MOUNT /'
awk '{print "mountpoint=" $5}' /proc/self/mountinfo
grep -c %[5]q /proc/net/unix | sed 's/^/unix-sockets-named=/'
echo end`, s.socket, filepath.Join(byRoot, "root", "kept"), w.StateDir, w.StateDir+"|bystander", sockName)
	for _, network := range []bool{false, true} {
		r.Run()
		body, _ := json.Marshal(builder.Request{Config: w.Root, Network: network, Command: []string{"/bin/sh", "-c", script}})
		code, msg := apiPost(t, s.socket, "/v1/builds", body)
		r.Must(code == 201, "submit: %d %s", code, msg)
		id := firstBuild(t, s.socket)
		lvmtestWait(t, "the build", func() bool { return builder.Final(getBuild(t, s.socket, id).State) })
		b := getBuild(t, s.socket, id)
		log := readOr(filepath.Join(w.StateDir, "builds", id, "log"))
		r.Check(b.State == builder.StateSucceeded && strings.Contains(log, "end"), "the build: %s %s\n%s", b.State, b.Error, log)
		var procs int
		fmt.Sscanf(log[strings.Index(log, "procs="):], "procs=%d", &procs)
		r.Check(procs > 0 && procs <= 6, "network %v: the build sees %d processes", network, procs)
		r.Check(strings.Contains(log, "pid1=__thinroot-sandbox"), "network %v: the build's pid 1 is not its sandbox's init:\n%s", network, log)
		for _, bad := range []string{"SOCKET-VISIBLE", "WORKDIR-VISIBLE", "STATE-VISIBLE", "FOUND ", "MOUNT "} {
			r.Check(!strings.Contains(log, bad), "network %v: %s\n%s", network, bad, log)
		}
		for _, l := range strings.Split(log, "\n") {
			if mp, ok := strings.CutPrefix(l, "mountpoint="); ok {
				own := mp == "/" || mp == "/tmp" || mp == "/sys" || mp == "/builddir/results" || mp == "/builddir/source" ||
					strings.HasPrefix(mp, "/proc") || strings.HasPrefix(mp, "/dev")
				r.Check(own, "network %v: the build has a mount that is not its own: %s", network, mp)
			}
		}
		if !network {
			r.Check(strings.Contains(log, "unix-sockets-named=0"), "network off: the build lists the daemon's socket:\n%s", log)
		}
	}
}

// TestModes: the socket is 0666 root:group (thinroot(1)); the tree's
// nodes have the modes thinroot-tree(5) gives (root and the group own
// everything; 0775 where mkdir and rmdir act, 0664 for the action files,
// 0555 and 0444 elsewhere); volume and pool images are root's only and
// nothing thinroot writes in its state directory or the basedir is
// writable by others (thinroot(1), FILES).
func TestModes(t *testing.T) {
	r := faults.Record(t, "security", "modes of the socket, the tree and the state files", hostEnv.Name)
	w, s := secureWorld(t)
	var st syscall.Stat_t
	r.Must(syscall.Stat(s.socket, &st) == nil, "stat socket")
	r.Check(st.Mode&0o7777 == 0o666 && st.Uid == 0 && st.Gid == treeGID, "socket mode %o owner %d:%d, want 0666 0:%d",
		st.Mode&0o7777, st.Uid, st.Gid, treeGID)
	config, snaps := treePaths(s.mnt, w)
	want := map[string]uint32{
		s.mnt: 0o555, filepath.Join(s.mnt, "README"): 0o444, filepath.Join(s.mnt, "pools", w.Pool, "stats"): 0o444,
		config: 0o555, filepath.Join(config, "state"): 0o444, filepath.Join(config, "current"): 0o664,
		snaps: 0o775, filepath.Join(snaps, lvm.PostInit): 0o775, filepath.Join(snaps, lvm.PostInit, ".info"): 0o444,
		filepath.Join(snaps, lvm.PostInit, "mine"): 0o555, filepath.Join(snaps, lvm.PostInit, "mine", ".info"): 0o444,
		filepath.Join(snaps, lvm.PostInit, "mine", "snapshot"): 0o664,
	}
	for p, mode := range want {
		r.Run()
		err := syscall.Lstat(p, &st)
		r.Check(err == nil && st.Mode&0o7777 == mode && st.Uid == 0 && st.Gid == treeGID,
			"%s: mode %o owner %d:%d (%v), want %o 0:%d", strings.TrimPrefix(p, s.mnt), st.Mode&0o7777, st.Uid, st.Gid, err, mode, treeGID)
	}
	// Pool images, and the volumes in them: the file backend's images, or
	// the btrfs backend's volumes directory (its subvolumes are the
	// buildroots themselves).
	images, _ := filepath.Glob(filepath.Join(w.PoolsDir(), "*.img"))
	vols, _ := filepath.Glob(filepath.Join(w.PoolsDir(), "*", "volumes", "*.img"))
	wantVols := 3
	if w.Env.Name == "btrfs" {
		vols, _ = filepath.Glob(filepath.Join(w.PoolsDir(), "*", "volumes"))
		wantVols = 1
	}
	for _, img := range append(images, vols...) {
		r.Run()
		r.Check(syscall.Stat(img, &st) == nil && st.Mode&0o077 == 0, "%s: mode %o, want no access for group and others",
			strings.TrimPrefix(img, w.StateDir), st.Mode&0o7777)
	}
	r.Check(len(images) > 0 && len(vols) >= wantVols, "found %d pool images and %d volume images", len(images), len(vols))
	for _, root := range []string{w.StateDir, w.Basedir} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			// Inside the volumes' own filesystems (workdir roots, pools'
			// contents) the modes are the buildroot's business.
			if d.IsDir() && (d.Name() == "root" && strings.HasPrefix(p, w.Basedir) || p == w.PoolsDir()) {
				return filepath.SkipDir
			}
			// Warm spares are buildroots too, in a directory only root
			// may enter.
			if d.IsDir() && p == filepath.Join(w.StateDir, "spares") {
				r.Run()
				r.Check(syscall.Stat(p, &st) == nil && st.Mode&0o077 == 0, "%s: mode %o, want no access for group and others", p, st.Mode&0o7777)
				return filepath.SkipDir
			}
			if syscall.Lstat(p, &st) == nil && st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
				r.Run()
				r.Check(st.Mode&0o002 == 0, "%s is writable by others (mode %o)", p, st.Mode&0o7777)
			}
			return nil
		})
	}
}
