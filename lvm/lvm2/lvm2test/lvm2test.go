// Package lvm2test gives tests a volume group on real dm-thin: inside the
// VM of testdata/vm/run, on the scratch disk it attaches. Outside the VM
// the tests that ask for one are skipped with the reason.
//
// It imports nothing of thinroot, so both the lvm2 package's own tests and
// suites elsewhere (the Manager's, run once per backend) can use it:
//
//	be, err := lvm2.New(lvm2test.VG(t), lvm2.Options{})
//
// A suite whose helper processes (the test binary run again) make their own
// backends uses VGName there: the parent test made the group with VG
// before starting them. RemovePool cleans up after a suite's test.
package lvm2test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// VGName is the volume group made on the VM's disk.
const VGName = "thinroot_vm"

// Disk is the VM's scratch disk (THINROOT_VM_DISK). It skips t, with the
// reason, when not running in the VM.
func Disk(t testing.TB) string {
	t.Helper()
	if os.Getenv("THINROOT_VM") == "" {
		t.Skip("needs device-mapper: runs only in the VM (testdata/vm/run sets THINROOT_VM=1)")
	}
	d := os.Getenv("THINROOT_VM_DISK")
	if d == "" {
		t.Fatal("THINROOT_VM is set but THINROOT_VM_DISK is not")
	}
	return d
}

var (
	vgOnce sync.Once
	vgErr  error
)

// VG is a volume group spanning the VM's disk, made once per process. A
// volume group left on the disk by an earlier test binary of the same VM
// run is removed first, with everything in it. Tests share it, so each
// should use pool and volume names of its own (see Name).
func VG(t testing.TB) string {
	t.Helper()
	disk := Disk(t)
	vgOnce.Do(func() { vgErr = makeVG(disk) })
	if vgErr != nil {
		t.Fatalf("volume group on %s: %v", disk, vgErr)
	}
	return VGName
}

func makeVG(disk string) error {
	out, _, err := run("pvs", "--noheadings", "-o", "vg_name", disk)
	if err == nil {
		if vg := strings.TrimSpace(string(out)); vg != "" {
			if _, stderr, err := run("vgremove", "-ff", "-y", vg); err != nil {
				return fmt.Errorf("vgremove %s: %v: %s", vg, err, stderr)
			}
		}
	}
	for _, args := range [][]string{
		{"pvcreate", "-ff", "-y", disk},
		{"vgcreate", VGName, disk},
	} {
		if _, stderr, err := run(args...); err != nil {
			return fmt.Errorf("lvm %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
	}
	return nil
}

func run(args ...string) ([]byte, string, error) {
	cmd := exec.Command("lvm", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

// LVM runs an lvm2 command (as "lvm lvcreate ...") and fails t when it
// fails. It returns stdout.
func LVM(t testing.TB, args ...string) string {
	t.Helper()
	out, stderr, err := run(args...)
	if err != nil {
		t.Fatalf("lvm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// TryLVM runs an lvm2 command and returns stdout, stderr and the exit code
// (-1 when it could not run).
func TryLVM(args ...string) (stdout, stderr string, exit int) {
	out, errOut, err := run(args...)
	exit = 0
	if err != nil {
		exit = -1
		if ee, ok := err.(*exec.ExitError); ok {
			exit = ee.ExitCode()
		}
	}
	return string(out), errOut, exit
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_+.-]+`)

// Name makes an LV name unique to the test from a suffix.
func Name(t testing.TB, suffix string) string {
	n := unsafe.ReplaceAllString(t.Name(), "_")
	n = strings.TrimLeft(n, "-_.")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return "t_" + n + "_" + suffix
}

// Cmd runs a command other than lvm (mkfs, mount, dd) and fails t when it
// fails. It returns the combined output.
func Cmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// RemovePool removes a pool with everything in it, for a suite's cleanup
// (the backend itself never removes a pool that holds volumes). Its
// arguments match the Manager suite's Env.RemovePool; stateDir is unused.
func RemovePool(t testing.TB, stateDir, pool string) {
	if os.Getenv("THINROOT_VM") == "" {
		return
	}
	if _, stderr, exit := TryLVM("lvremove", "-f", VGName+"/"+pool); exit != 0 &&
		!strings.Contains(stderr, "Failed to find logical volume") {
		t.Logf("remove pool %s/%s: exit %d: %s", VGName, pool, exit, strings.TrimSpace(stderr))
	}
}
