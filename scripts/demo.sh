#!/bin/sh
# The quick-start demo: a file pool in a scratch directory, the busybox
# config bootstrapped once, workdirs cloned from its postinit snapshot.
#   scripts/demo.sh          run it (again: it starts from a clean slate)
#   scripts/demo.sh clean    remove everything it made
set -eu
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-/tmp/thinroot-demo}
TR="$PWD/bin/thinroot"
export THINROOT_STATE_DIR="$DEMO_DIR/state" THINROOT_BASEDIR="$DEMO_DIR/mock"
CFG="busybox"

step() { printf '\n== %s\n' "$*"; STEP_START=$(date +%s%N); }
took() { printf '   (%d ms)\n' $((($(date +%s%N) - STEP_START) / 1000000)); }

clean() {
	if [ -x "$TR" ] && [ -d "$THINROOT_STATE_DIR" ]; then
		"$TR" scrub "$CFG" --pool demo >/dev/null 2>&1 || true
		"$TR" pool remove demo >/dev/null 2>&1 || true
	fi
	# Anything left mounted under the demo directory goes too.
	grep " $DEMO_DIR/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		umount -l "$m" || true
	done
	rm -rf "$DEMO_DIR"
}

if [ "${1:-}" = clean ]; then
	clean
	echo "removed $DEMO_DIR"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "the demo needs root (loop devices and mounts)" >&2; exit 1; }
clean
mkdir -p "$DEMO_DIR"

step "create a 4 GiB file pool (sparse XFS image with reflink)"
"$TR" pool create demo --size 4G
took
step "bootstrap config '$CFG' once: base volume, mkfs, busybox root, postinit snapshot"
"$TR" init "$CFG" --pool demo --size 2G -- sh testdata/bootstrap/busybox.sh
took
step "clone three workdirs from postinit"
for ext in a b c; do "$TR" workdir create "$CFG" "$ext" --pool demo; done
took
step "run a command in workdir a (a plain chroot into the mounted volume)"
chroot "$DEMO_DIR/mock/$CFG-a/root" /bin/sh -c 'cat /etc/issue; echo "written in a" > /root/note'
took
step "snapshot workdir a as 'noted', clone workdir d from it"
"$TR" snapshot "$CFG" noted --pool demo --uniqueext a
"$TR" workdir create "$CFG" d --pool demo --snapshot noted
chroot "$DEMO_DIR/mock/$CFG-d/root" /bin/cat /root/note
took
step "list"
"$TR" list-snapshots "$CFG" --pool demo
"$TR" workdir list
"$TR" pool list
echo
echo "Left running: pool 'demo' with config '$CFG' under $DEMO_DIR."
echo "Try: chroot $DEMO_DIR/mock/$CFG-b/root /bin/sh"
echo "Remove it all with: make demo-clean"
