#!/bin/sh
# The demo's "package": turns input.txt into an artifact, the way a real
# build turns sources into packages. Runs inside the buildroot.
set -eu
echo "building in $(hostname) as uid $(id -u), build ${THINROOT_BUILD_ID:-?}"
mkdir -p /builddir/work
tr 'a-z' 'A-Z' < "$SOURCE/input.txt" > /builddir/work/output.txt
sleep "${BUILD_SLEEP:-0}"
( cat /builddir/work/output.txt; echo "built by $(cat /etc/issue)" ) > "$RESULTS/artifact.txt"
sha256sum "$RESULTS/artifact.txt" | tee "$RESULTS/artifact.sha256"
echo "done"
