#!/bin/sh
# A short run of every fuzz target (CI), then the failure in full.
# A failing input is written under the package's testdata/fuzz/<Target>/
# by go test; commit it with the fix as a regression seed.
#
#   scripts/fuzz-short.sh              every target, a fixed number of inputs
#   FUZZTIME=5m scripts/fuzz-short.sh  every target for 5 minutes (the long run)
#
# The short run counts inputs (about 10 s each on an idle machine), not
# time: the fuzzer first runs the corpus it has (the seeds and what this
# machine's cache holds), and a time limit that expires in that phase
# fails the target with "context deadline exceeded" and no input, which
# is what a loaded machine did to earlier short runs. A new input is
# minimized for at most FUZZMINTIME (default 200 runs); the fuzzer reports
# no executions meanwhile, which is not a hang.
#
# With THINROOT_FAULTS_REPORT set, one JSON line per target is appended
# to it (suite "fuzz") for RELIABILITY.md.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZMINTIME=${FUZZMINTIME:-200x}
# package, target, inputs of a short run
targets="
./lvm/mock FuzzNames 30000
./lvm/mock FuzzParseVolume 300000
./fsview FuzzActionWrite 50000
./builder FuzzSubmit 40000
./mockcfg FuzzLoad 8000
./mockcfg FuzzRender 60000
"
echo "$targets" | while read -r pkg target count; do
	[ -n "$pkg" ] || continue
	log=$(mktemp)
	start=$(date +%s)
	budget=${FUZZTIME:-${count}x}
	echo "== $target ($pkg, $budget)"
	if $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" -fuzzminimizetime "$FUZZMINTIME" "$pkg" >"$log" 2>&1; then
		ok=true
	else
		ok=false
	fi
	tail -n 3 "$log"
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo 0)
	seeds=$(find "${pkg#./}/testdata/fuzz/$target" -type f 2>/dev/null | wc -l)
	if [ -n "${THINROOT_FAULTS_REPORT:-}" ]; then
		failed_json=false
		$ok || failed_json=true
		printf '{"suite":"fuzz","case":"%s (%s): %s, %s seeds","backend":"","runs":%s,"checks":%s,"failed":%s,"seconds":%s,"commit":"%s"}\n' \
			"$target" "$pkg" "$budget" "$seeds" "${execs:-0}" "${execs:-0}" "$failed_json" "$(($(date +%s) - start))" \
			"${THINROOT_FAULTS_COMMIT:-}" >>"$THINROOT_FAULTS_REPORT"
	fi
	if ! $ok; then
		# The whole report, less the progress lines: the reason and the
		# failing input's file are above the last three lines.
		grep -v '^fuzz: elapsed' "$log" | tail -n 60
		echo "FAIL: $target"
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
done
