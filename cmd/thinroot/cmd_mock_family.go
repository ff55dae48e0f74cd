package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/internal/lock"
	"github.com/thinroot/thinroot/internal/mount"
	"github.com/thinroot/thinroot/lvm"
	"github.com/thinroot/thinroot/rpmroot"
)

// Config families. kojid names a new buildroot, and writes a new config
// koji/<tag>-<id>-<repoid>.cfg, for every task: to thinroot each would be
// a config of its own, bootstrapped anew. Configs named with a directory
// (-r koji/NAME) therefore join a family: the configs of that directory
// whose content is the same but for their root (the same repositories,
// setup command, architecture, macros, volume settings) are one thinroot
// config, "<dir>-<hash>", bootstrapped once. Each root is a workdir of it
// (ext: the root's name), mounted by thinroot where the family's
// workdirs live and bound at <basedir>/<root>/root, where the farm looks.
// A record beside the workdir names that path; when a farm has removed
// it (kojid unmounts lazily and deletes <basedir>/<root>), the next call
// of the family removes the workdir.

// isFamilyName tells whether -r names a config in a directory of the
// config dir.
func isFamilyName(r string) bool {
	return strings.Contains(r, "/") && !strings.HasSuffix(r, ".cfg")
}

// familyRoot is the family's config root: the directory's name and a
// digest of what the config says besides its root.
func familyRoot(r string, vol lvm.Config, rc *rpmroot.Config) string {
	pm := *rc.PM
	pm.Root, pm.CacheDir = "", ""
	vol.Root, vol.UniqueExt, vol.Bootstrap, vol.BootstrapDir = "", "", nil, ""
	data, _ := json.Marshal(struct {
		PM     any
		Vol    lvm.Config
		Arch   string
		Macros [][2]string
		Files  map[string]string
		Env    []string
		Home   string
	}{pm, vol, rc.TargetArch, rc.Macros, rc.Files, rc.Environment, rc.Home})
	sum := sha256.Sum256(data)
	dir := strings.NewReplacer("/", "-", ".", "_").Replace(filepath.Dir(r))
	return dir + "-" + hex.EncodeToString(sum[:])[:12]
}

// familyRecord is the file beside a family workdir that names the root
// path it is bound at.
const familyRecord = "mock-root"

// bind binds the workdir's mount at the root's path and records it.
func (r *mockRun) bind() error {
	if err := os.MkdirAll(r.root, 0o755); err != nil {
		return err
	}
	if ok, _ := mount.IsMountpoint(r.root); !ok {
		if err := unix.Mount(r.volRoot, r.root, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s at %s: %w", r.volRoot, r.root, err)
		}
	}
	return os.WriteFile(filepath.Join(filepath.Dir(r.volRoot), familyRecord), []byte(r.root+"\n"), 0o644)
}

// unbind unmounts the bound root, lazily when it is busy.
func unbind(root string) {
	if ok, _ := mount.IsMountpoint(root); !ok {
		return
	}
	if err := unix.Unmount(root, 0); err != nil {
		unix.Unmount(root, unix.MNT_DETACH)
	}
}

// sweepFamily removes the family's workdirs whose bound root is gone
// and that no mock uses (nobody holds the root's lock). A workdir
// without a record is left alone: a call is between its clone and its
// bind.
func (r *mockRun) sweepFamily(ctx context.Context) {
	_, cs := r.m.State().Config(r.c.Root)
	if cs == nil {
		return
	}
	for _, w := range cs.Workdirs {
		if w.Ext == r.ext {
			continue
		}
		data, err := os.ReadFile(filepath.Join(r.c.WorkdirDir(w.Ext), familyRecord))
		if err != nil {
			continue
		}
		root := strings.TrimSpace(string(data))
		if ok, _ := mount.IsMountpoint(root); ok {
			continue
		}
		if _, err := os.Stat(filepath.Dir(root)); err == nil {
			h, err := lock.TryLock(filepath.Join(filepath.Dir(root), "buildroot.lock"), true)
			if err != nil || h == nil {
				continue
			}
			defer h.Release()
		}
		if err := builder.RemoveWorkdirRetry(ctx, r.m, r.c.Root, w.Ext); err != nil {
			r.a.logger().Warn("remove a family workdir whose root is gone", "workdir", r.c.Root+"."+w.Ext, "root", root, "err", err)
			continue
		}
		os.RemoveAll(r.c.WorkdirDir(w.Ext))
		fmt.Fprintf(r.out, "INFO: removed %s.%s: its root %s is gone\n", r.c.Root, w.Ext, root)
	}
}
