package lvm2

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/lvm2/lvm2test"
)

// TestRecordFixtures prints, between marker lines, the JSON reports and
// error messages that the unit tests parse. testdata/lvm2/record runs it in
// the VM and writes the files under testdata/lvm2/. It runs only when
// THINROOT_LVM2_RECORD is set.
func TestRecordFixtures(t *testing.T) {
	if os.Getenv("THINROOT_LVM2_RECORD") == "" {
		t.Skip("records fixtures only with THINROOT_LVM2_RECORD=1 (see testdata/lvm2/record)")
	}
	vg := lvm2test.VG(t)
	ctx := context.Background()
	b, err := New(vg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	emit := func(name, text string) {
		fmt.Printf("THINROOT-FIXTURE-BEGIN %s\n%s\nTHINROOT-FIXTURE-END %s\n", name, strings.TrimRight(text, "\n"), name)
	}
	report := func(name string, command string, fields []string, target string) {
		emit(name, lvm2test.LVM(t, append([]string{command}, append(reportArgs(fields), target)...)...))
	}
	failure := func(name string, args ...string) {
		_, stderr, exit := lvm2test.TryLVM(args...)
		if exit == 0 {
			t.Errorf("lvm %s succeeded; expected a failure to record", strings.Join(args, " "))
		}
		emit("errors/"+name+".txt", fmt.Sprintf("exit %d\ncommand lvm %s\n%s", exit, strings.Join(args, " "), stderr))
	}
	sh := func(name string, args ...string) { lvm2test.Cmd(t, name, args...) }

	// A volume that is no business of ours.
	lvm2test.LVM(t, "lvcreate", "-L", "8m", "-n", "foreign", vg)

	// thinroot's own pool and volumes, made by the backend.
	if err := b.CreatePool(ctx, backend.PoolSpec{Name: "mockbuild", Size: 96 << 20, MetadataSize: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	head, err := b.Create(ctx, "mockbuild", "+mock.fedora-41-x86_64.head", 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	sh("mkfs.ext4", "-q", head.Mount.Source)
	if _, err := b.Snapshot(ctx, "mockbuild", head.Name, "mock.fedora-41-x86_64.postinit", backend.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Snapshot(ctx, "mockbuild", "mock.fedora-41-x86_64.postinit", "+mock.fedora-41-x86_64.try1",
		backend.SnapshotOptions{Activate: true, Tags: []string{"thinroot.test=1"}}); err != nil {
		t.Fatal(err)
	}

	// mock's own command lines, in a pool of mock's making.
	lvm2test.LVM(t, "lvcreate", "-T", vg+"/mockpool", "-L", "32m")
	lvm2test.LVM(t, "lvcreate", "-T", vg+"/mockpool", "-V", "128m", "-n", "+mock.epel-9-x86_64.head")
	lvm2test.LVM(t, "lvcreate", "-s", vg+"/+mock.epel-9-x86_64.head", "-n", "mock.epel-9-x86_64.postinit")
	lvm2test.LVM(t, "lvcreate", "-s", vg+"/mock.epel-9-x86_64.postinit", "-n", "+mock.epel-9-x86_64.b1", "--setactivationskip", "n")

	report("lvs-vg.json", "lvs", lvFields, vg)
	report("lvs-one.json", "lvs", lvFields, vg+"/+mock.fedora-41-x86_64.try1")
	report("vgs.json", "vgs", vgFields, vg)

	// Everything inactive: usage figures become "".
	lvm2test.LVM(t, "vgchange", "-an", vg)
	report("lvs-inactive.json", "lvs", lvFields, vg)
	lvm2test.LVM(t, "vgchange", "-ay", vg)
	report("lvs-reactivated.json", "lvs", lvFields, vg)

	// A full pool.
	if err := b.CreatePool(ctx, backend.PoolSpec{Name: "tiny", Size: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	filler, err := b.Create(ctx, "tiny", "filler", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	dd := exec.Command("timeout", "60", "dd", "if=/dev/zero", "of="+filler.Mount.Source, "bs=1M", "count=16", "oflag=direct")
	start := time.Now()
	out, err := dd.CombinedOutput()
	t.Logf("dd into the full pool: %v after %v\n%s", err, time.Since(start), out)
	report("lvs-full.json", "lvs", lvFields, vg)
	failure("thin-in-full-pool", "lvcreate", "--type", "thin", "--thinpool", "tiny", "-V", "16m", "-n", "more", vg)

	failure("vg-not-found", "lvs", "nosuchvg")
	failure("lv-not-found", "lvs", vg+"/nosuch")
	failure("lvcreate-exists", "lvcreate", "--type", "thin", "--thinpool", "mockbuild", "-V", "16m", "-n", "+mock.fedora-41-x86_64.head", vg)
	failure("pool-exists", "lvcreate", "--thinpool", "mockbuild", "-L", "8m", "--errorwhenfull", "y", vg)
	failure("lvremove-not-found", "lvremove", "-f", vg+"/nosuch")
	failure("lvrename-exists", "lvrename", vg, "+mock.fedora-41-x86_64.try1", "+mock.fedora-41-x86_64.head")
	failure("lvrename-not-found", "lvrename", vg, "nosuch", "other")
	failure("snapshot-origin-not-found", "lvcreate", "-s", "-n", "x", vg+"/nosuch")
	failure("thin-pool-not-found", "lvcreate", "--type", "thin", "--thinpool", "nosuchpool", "-V", "16m", "-n", "x", vg)
	failure("vgcreate-exists", "vgcreate", vg, lvm2test.Disk(t))
	failure("lvextend-no-room", "lvextend", "-L", "+100g", vg+"/mockbuild")
	failure("pool-no-room", "lvcreate", "--type", "thin-pool", "-L", "100g", "-n", "huge", vg)

	mnt := t.TempDir()
	dev := strings.TrimSpace(lvm2test.LVM(t, "lvs", "--noheadings", "-o", "lv_path", vg+"/+mock.fedora-41-x86_64.try1"))
	sh("mount", dev, mnt)
	failure("lvremove-mounted", "lvremove", "-f", vg+"/+mock.fedora-41-x86_64.try1")
	sh("umount", mnt)
	// lvremove without -f asks before taking a pool's volumes along; with
	// no terminal it reads no answer and refuses.
	failure("lvremove-pool-with-volumes", "lvremove", vg+"/mockpool")
}
