#!/bin/sh
# Bootstrap a minimal buildroot from the host's static busybox.
# thinroot runs this with ROOT set to the mounted base volume.
#
# Environment:
#   ROOT               the root to fill (required)
#   BUSYBOX            static busybox to install (default: /bin/busybox)
#   BUILD_USER         name of the unprivileged build user (default: mockbuild)
#   BUILD_UID          its uid and gid (default: 1000)
#   BOOTSTRAP_PAD_MB   write this many MiB of incompressible filler under
#                      /usr/share/pad, to give tests a root of a known size
set -eu
: "${ROOT:?ROOT must name the root to bootstrap}"
BUSYBOX=${BUSYBOX:-/bin/busybox}
BUILD_USER=${BUILD_USER:-mockbuild}
BUILD_UID=${BUILD_UID:-1000}

case "$ROOT" in /|"") echo "refusing to bootstrap into '$ROOT'" >&2; exit 1;; esac
if ! "$BUSYBOX" --list >/dev/null 2>&1; then
	echo "busybox not usable at $BUSYBOX (install busybox-static)" >&2
	exit 1
fi
if command -v file >/dev/null 2>&1 && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
	echo "$BUSYBOX is not statically linked; it would not run inside the root" >&2
	exit 1
fi

mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/etc" \
	"$ROOT/tmp" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/root" \
	"$ROOT/builddir" "$ROOT/var/tmp"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 0755 "$ROOT/bin/busybox"
real=$(readlink -f "$BUSYBOX")
case "$real" in
/bin/busybox | /usr/bin/busybox | /sbin/busybox | /usr/sbin/busybox)
	# One process makes every applet link: much faster than a process
	# per link where processes are expensive (in the emulated test VM a
	# loop of ln took 30 s a root). busybox points its links at its own
	# real path (/proc/self/exe); inside the root that path leads to the
	# copy in /bin.
	"$BUSYBOX" --install -s "$ROOT/bin"
	if [ "$real" != /bin/busybox ]; then
		mkdir -p "$ROOT${real%/busybox}"
		ln -sf /bin/busybox "$ROOT$real"
	fi
	;;
*)
	for applet in $("$BUSYBOX" --list); do
		[ "$applet" = busybox ] && continue
		ln -sf busybox "$ROOT/bin/$applet"
	done
	;;
esac

cat >"$ROOT/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/sh
$BUILD_USER:x:$BUILD_UID:$BUILD_UID:build user:/builddir:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
PASSWD
cat >"$ROOT/etc/group" <<GROUP
root:x:0:
$BUILD_USER:x:$BUILD_UID:
nogroup:x:65534:
GROUP
chown "$BUILD_UID:$BUILD_UID" "$ROOT/builddir"
echo "thinroot busybox buildroot" >"$ROOT/etc/issue"
date -u +%Y-%m-%dT%H:%M:%SZ >"$ROOT/etc/bootstrap-date"

if [ "${BOOTSTRAP_PAD_MB:-0}" -gt 0 ]; then
	mkdir -p "$ROOT/usr/share/pad"
	i=0
	while [ "$i" -lt "$BOOTSTRAP_PAD_MB" ]; do
		head -c 1048576 /dev/urandom >"$ROOT/usr/share/pad/f$i"
		i=$((i + 1))
	done
fi
echo "bootstrapped busybox root in $ROOT"
