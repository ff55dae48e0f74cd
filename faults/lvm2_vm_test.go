//go:build lvm2

package faults_test

// The crash matrix on the lvm2 backend, on real dm-thin in the VM of
// testdata/vm/run (this host's kernel has no device-mapper). Built only
// with -tags lvm2, once lvm/lvm2 is part of the module:
//
//	go test -c -tags lvm2,crashpoints -o /var/tmp/faults-lvm2.test ./faults
//	testdata/vm/run --disk-size 8G --timeout 5400 -- -C faults /var/tmp/faults-lvm2.test \
//	    -test.run 'TestCrashMatrixLVM2' -test.v -test.timeout 90m
//
// THINROOT_FAULTS_RUNS and THINROOT_FAULTS_REPORT pass into the VM.

import (
	"testing"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/lvm/lvm2/lvm2test"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// The crash matrix's lvm2 env: thin pools take their data space from the
// group at once, so they are small (the ByOwnPool worlds make two).
var lvm2Env = func() lvmtest.Env {
	e := lvmtest.LVM2()
	e.PoolSize, e.VolumeSize, e.SpacePadMB = 512<<20, 256<<20, 0
	return e
}()

func init() { moreEnvs = append(moreEnvs, lvm2Env) }

// TestCrashMatrixLVM2 runs every point that lives outside the file
// backend's own code (faults.PointsFor("lvm2")).
func TestCrashMatrixLVM2(t *testing.T) {
	lvm2test.VG(t) // skips outside the VM, and makes the VG the helpers use
	faults.RunCrashMatrix(t, lvm2Env)
}
