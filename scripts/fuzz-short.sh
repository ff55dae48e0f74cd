#!/bin/sh
# A short run of every fuzz target (CI): FUZZTIME each (default 15s).
# A failing input is written under the package's testdata/fuzz/<Target>/
# by go test; commit it with the fix as a regression seed.
#
#   scripts/fuzz-short.sh              every target, 15s each
#   FUZZTIME=5m scripts/fuzz-short.sh  the long run
#
# With THINROOT_FAULTS_REPORT set, one JSON line per target is appended
# to it (suite "fuzz") for RELIABILITY.md.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-15s}
targets="
./lvm/mock FuzzNames
./lvm/mock FuzzParseVolume
./fsview FuzzActionWrite
./builder FuzzSubmit
./mockcfg FuzzLoad
./mockcfg FuzzRender
"
echo "$targets" | while read -r pkg target; do
	[ -n "$pkg" ] || continue
	log=$(mktemp)
	start=$(date +%s)
	echo "== $target ($pkg, $FUZZTIME)"
	if $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
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
			"$target" "$pkg" "$FUZZTIME" "$seeds" "${execs:-0}" "${execs:-0}" "$failed_json" "$(($(date +%s) - start))" \
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
