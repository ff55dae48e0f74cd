// Package faults is thinroot's fault and bad-input suite: what real hosts
// do to a thin-provisioned buildroot manager, and proof that nothing is
// lost and nobody gets in.
//
// The package itself is a library, parameterized by backend like
// lvm/lvmtest: the crash-point matrix (RunCrashMatrix) and the serial
// model of operations (Picture, Apply) run on any lvmtest.Env, so the
// same matrix runs on the file backend on this host and on lvm2 in the VM.
// Its tests (faults/*_test.go) run everything on the file backend; the
// scenarios that drive the real binary (a FUSE server killed, a full pool
// seen through the daemon, races between the CLI and two daemons, the
// security checks) live there too.
//
// Every case appends one JSON line to the file named by
// $THINROOT_FAULTS_REPORT (see Record); scripts/reliability.sh turns those
// lines into RELIABILITY.md.
package faults
