#!/bin/sh
# Runs the fault suite and a short fuzz run, and writes RELIABILITY.md from
# their JSON output (faults/reliability). Needs root, like the suite.
#
#   scripts/reliability.sh                 runs 2 per crash point, 15s per fuzz target
#   RUNS=5 FUZZTIME=1m scripts/reliability.sh
#   EXTRA_REPORTS=vm.log scripts/reliability.sh   add results run elsewhere
#                                                 (the lvm2 matrix's VM console log)
#
# Exits non-zero when any case failed (RELIABILITY.md is written anyway).
set -u
cd "$(dirname "$0")/.."
GO=${GO:-go}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
export THINROOT_FAULTS_REPORT="$report"
export THINROOT_FAULTS_RUNS="${RUNS:-2}"
export THINROOT_FAULTS_COMMIT="$(git describe --always --dirty 2>/dev/null || echo unknown)"
status=0
$GO test -count=1 -tags "${TEST_TAGS:-crashpoints}" -timeout 30m ./faults/ || status=1
FUZZTIME="${FUZZTIME:-15s}" scripts/fuzz-short.sh || status=1
$GO run ./faults/reliability -report "$report${EXTRA_REPORTS:+,$EXTRA_REPORTS}" -out RELIABILITY.md || status=1
exit $status
