#!/bin/sh
# Every test tier CI can run, in order, each timed; the table of times is
# printed at the end, also when a tier fails (the run stops there).
#   scripts/check.sh [TIER...]    default: every tier of `make check`
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
tiers=${*:-"deps lint build man install-check test fuzz-short test-vm"}
table=$(mktemp)
trap 'rm -f "$table"' EXIT
start_all=$(date +%s)
rc=0
for tier in $tiers; do
	echo "==== make $tier"
	start=$(date +%s)
	if $MAKE --no-print-directory "$tier"; then
		status=ok
	else
		status=FAILED
		rc=1
	fi
	printf '%-14s %6ss  %s\n' "$tier" "$(($(date +%s) - start))" "$status" >>"$table"
	[ "$rc" -eq 0 ] || break
done
echo
echo "==== tier          time  status"
cat "$table"
printf '%-14s %6ss\n' "total" "$(($(date +%s) - start_all))"
exit "$rc"
