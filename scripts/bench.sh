#!/bin/sh
# make bench: thinroot against untar, cp -a and overlayfs, the control
# plane, parallel builds and the Go benchmarks, in one run; writes
# BENCHMARKS.json, BENCHMARKS.md and ready-time.svg at the top of the tree.
#   scripts/bench.sh [bench run flags...]   (bin/thinroot-bench run -h lists them)
# Needs root (loop devices, mounts, FUSE, chroot) and bin/thinroot (make build).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "make bench needs root: loop devices, mounts, FUSE and chroot" >&2
	exit 1
fi
# gnuplot draws the chart; pigz is what mock's root cache uses when the
# host has it, so the untar alternative is measured the way mock runs it.
scripts/deps.sh gnuplot-nox pigz
GO=${GO:-go}
"$GO" build -o bin/thinroot-bench ./bench

# Benchmark 5: lvm2 invocations per operation, counted in the VM (this host
# has no device-mapper) by the lvm2 suite's counting test in this same run.
# BENCH_VM=0 skips it; the report then says it was not measured.
counts=bench/results/lvm-counts.json
rm -f "$counts"
if [ "${BENCH_VM:-1}" = 1 ]; then
	mkdir -p _out bench/results
	"$GO" test -c -o _out/lvm2.test ./lvm/lvm2
	if testdata/vm/run --disk-size 8G --timeout 900 -- -C lvm/lvm2 "$PWD/_out/lvm2.test" \
		-test.run '^TestManagerInvocationCounts$' -test.v >_out/vm-counts.log 2>&1; then
		sed -n 's/^.*THINROOT-LVM-COUNTS //p' _out/vm-counts.log | tail -n 1 >"$counts"
	fi
	if [ ! -s "$counts" ]; then
		rm -f "$counts"
		echo "bench: the VM count run failed (see _out/vm-counts.log); benchmark 5 stays unmeasured" >&2
	fi
fi
status=0
bin/thinroot-bench run "$@" || status=$?
# The run cleans up after itself, even when it fails; this catches what a
# run killed outright left behind (a no-op otherwise).
bin/thinroot-bench clean "$@" || true
exit "$status"
