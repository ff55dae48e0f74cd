#!/bin/sh
# make bench: thinroot against untar, cp -a and overlayfs, the control
# plane, parallel builds and the Go benchmarks, in one run; writes
# bench/BENCHMARKS.json, bench/BENCHMARKS.md and the chart beside them.
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
status=0
bin/thinroot-bench run "$@" || status=$?
# The run cleans up after itself, even when it fails; this catches what a
# run killed outright left behind (a no-op otherwise).
bin/thinroot-bench clean "$@" || true
exit "$status"
