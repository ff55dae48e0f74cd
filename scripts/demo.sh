#!/bin/sh
# The demo: the daemon serving the tree over a file pool in a scratch
# directory, the busybox config bootstrapped once by four builds started at
# the same moment, then a look around as a user would.
#   scripts/demo.sh          run it (again: it starts from a clean slate)
#   scripts/demo.sh clean    stop the daemon and remove everything it made
set -eu
cd "$(dirname "$0")/.."
REPO=$PWD
DEMO_DIR=${DEMO_DIR:-/tmp/thinroot-demo}
TR="$REPO/bin/thinroot"
export THINROOT_STATE_DIR="$DEMO_DIR/state" THINROOT_BASEDIR="$DEMO_DIR/mock"
export THINROOT_CONFIG_DIR="$REPO/testdata/configs" THINROOT_SOCKET="$DEMO_DIR/thinroot.sock"
MNT="$DEMO_DIR/tree"
CFG=busybox
POOL=mockbuild

now() { date +%s%N; }
DEMO_START=$(now)
step() { printf '\n== %s\n' "$*"; STEP_START=$(now); }
took() {
	ms=$((($(now) - STEP_START) / 1000000))
	printf '   [%d ms]\n' "$ms"
	TIMINGS="${TIMINGS:-}$(printf '%8d ms  %s' "$ms" "$STEP_NAME")
"
}
named() { STEP_NAME=$1; step "$1"; }
run() { printf '$ %s\n' "$*"; "$@"; }

stop_daemon() {
	if [ -f "$DEMO_DIR/serve.pid" ]; then
		pid=$(cat "$DEMO_DIR/serve.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$DEMO_DIR/serve.pid"
	fi
}

clean() {
	stop_daemon
	if [ -x "$TR" ] && [ -d "$THINROOT_STATE_DIR" ]; then
		"$TR" scrub "$CFG" >/dev/null 2>&1 || true
		"$TR" pool remove "$POOL" >/dev/null 2>&1 || true
	fi
	# Whatever is still mounted under the demo directory goes too, deepest
	# first (the pool image's mount last); autoclear loop devices follow.
	if [ -d "$DEMO_DIR" ]; then
		awk -v d="$DEMO_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
			umount -l "$m" 2>/dev/null || true
		done
	fi
	rm -rf "$DEMO_DIR"
}

if [ "${1:-}" = clean ]; then
	clean
	echo "removed $DEMO_DIR (daemon stopped, mounts and loop devices gone)"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "the demo needs root (loop devices, mounts, namespaces)" >&2; exit 1; }
[ -x "$TR" ] || { echo "build thinroot first: make build" >&2; exit 1; }

named "start from a clean slate"
clean
mkdir -p "$DEMO_DIR"
took

named "start the daemon: tree at $MNT, API at $THINROOT_SOCKET"
"$TR" serve --mount "$MNT" --jobs 4 --config "$CFG" >"$DEMO_DIR/serve.log" 2>&1 &
echo $! >"$DEMO_DIR/serve.pid"
i=0
until [ -S "$THINROOT_SOCKET" ] && [ -f "$MNT/README" ]; do
	sleep 0.1
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 "$(cat "$DEMO_DIR/serve.pid")" 2>/dev/null; then
		echo "the daemon did not start; its log:" >&2
		cat "$DEMO_DIR/serve.log" >&2
		exit 1
	fi
done
run "$TR" config show "$CFG"
took

named "4 builds at once on the cold config: one bootstraps it, three wait"
for n in 1 2 3 4; do
	keep=""
	[ "$n" = 1 ] && keep="--keep --uniqueext demo-kept"
	# shellcheck disable=SC2086
	"$TR" build "$CFG" --source "$REPO/testdata/demo/source" $keep \
		>"$DEMO_DIR/build$n.out" 2>"$DEMO_DIR/build$n.err" &
	eval "pid$n=$!"
done
fail=0
for n in 1 2 3 4; do
	eval "wait \$pid$n" || { echo "build $n failed:"; cat "$DEMO_DIR/build$n.err"; fail=1; }
done
[ $fail -eq 0 ]
for n in 1 2 3 4; do
	printf 'build %s: ' "$n"
	grep -o 'bootstrapping the config\|waiting for the init lock' "$DEMO_DIR/build$n.err" | head -n 1 || echo "(postinit was ready)"
done
run "$TR" builds
took

named "the tree: pools, configs, snapshots, workdirs, builds"
run ls "$MNT" "$MNT/pools" "$MNT/pools/$POOL/configs" "$MNT/pools/$POOL/configs/$CFG/snapshots/postinit"
run ls -l "$MNT/workdirs" "$MNT/configs"
run cat "$MNT/pools/$POOL/configs/$CFG/state" "$MNT/pools/$POOL/configs/$CFG/current"
run ls "$MNT/builds"
first=$(ls "$MNT/builds" | head -n 1)
run cat "$MNT/builds/$first/status"
took

named "the pool's stats"
run cat "$MNT/pools/$POOL/stats"
took

named "chroot into the kept workdir through the tree"
run chroot "$MNT/workdirs/$CFG.demo-kept" /bin/sh -c 'cat /etc/issue; id mockbuild; ls /builddir/work'
took

named "mkdir makes a workdir, a snapshot through the snapshot file, rmdir removes it"
snapdir="$MNT/pools/$POOL/configs/$CFG/snapshots"
run mkdir "$snapdir/postinit/try1"
run chroot "$MNT/workdirs/$CFG.try1" /bin/sh -c 'echo "tuned in try1" > /etc/tuned'
run sh -c "echo tuned > '$snapdir/postinit/try1/snapshot'"
run mkdir "$snapdir/tuned/try2"
run chroot "$MNT/workdirs/$CFG.try2" /bin/cat /etc/tuned
run rmdir "$snapdir/postinit/try1" "$snapdir/tuned/try2"
run ls "$snapdir"
took

named "the build results"
for d in "$DEMO_DIR"/mock/"$CFG"-*/result; do
	printf '%s:\n' "$d"
	sed 's/^/    /' "$d/artifact.txt"
done
took

printf '\n== timings\n%s' "$TIMINGS"
printf '%8d ms  total\n' $((($(now) - DEMO_START) / 1000000))
cat <<EOF

Left running for you to look around:
  the daemon (pid $(cat "$DEMO_DIR/serve.pid"), log $DEMO_DIR/serve.log), the tree at $MNT,
  workdir $CFG.demo-kept (chroot $MNT/workdirs/$CFG.demo-kept /bin/sh),
  snapshot 'tuned'. Try:
    ls $MNT/pools/$POOL/configs/$CFG/snapshots/*
    mkdir $MNT/pools/$POOL/configs/$CFG/snapshots/tuned/mine
    THINROOT_SOCKET=$THINROOT_SOCKET THINROOT_CONFIG_DIR=$THINROOT_CONFIG_DIR \\
      $TR build $CFG --source $REPO/testdata/demo/source
Remove it all with: make demo-clean
EOF
