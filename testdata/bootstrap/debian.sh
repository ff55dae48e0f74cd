#!/bin/sh
# Bootstrap a Debian buildroot with debootstrap --variant=buildd, from the
# mirror the host's apt is configured with (read at run time: no mirror
# host is written in this repository).
#
# Environment:
#   ROOT         the root to fill (required)
#   SUITE        Debian suite (default: the host's, from /etc/os-release)
#   MIRROR       override the mirror
#   INCLUDE      extra packages, comma-separated (default: debhelper)
#   BUILD_USER / BUILD_UID   the unprivileged build user (mockbuild / 1000)
#   DEBOOTSTRAP_CACHE        a directory for the downloaded packages: the
#                first run keeps them there as a tarball (debootstrap
#                --make-tarball), later runs unpack it without the
#                network; rebuilt after a week. Unset: download each time.
set -eu
: "${ROOT:?ROOT must name the root to bootstrap}"
case "$ROOT" in /|"") echo "refusing to bootstrap into '$ROOT'" >&2; exit 1;; esac
BUILD_USER=${BUILD_USER:-mockbuild}
BUILD_UID=${BUILD_UID:-1000}
INCLUDE=${INCLUDE:-debhelper}

if [ -z "${SUITE:-}" ]; then
	SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
fi
[ -n "$SUITE" ] || { echo "cannot tell the host's Debian suite; set SUITE" >&2; exit 1; }

host_mirror() {
	# deb822 sources first, then the one-line format.
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" '
			/^URIs:/ { uri=$2 } /^Suites:/ { for (i=2;i<=NF;i++) if ($i==suite) ok=1 }
			/^$/ { if (ok && uri) { print uri; exit } ok=0; uri="" }
			END { if (ok && uri) print uri }' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v suite="$SUITE" '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1)==suite) print $i; break } }'
}
MIRROR=${MIRROR:-$(host_mirror | head -n1)}
[ -n "$MIRROR" ] || { echo "no apt mirror for $SUITE found in the host's apt sources; set MIRROR" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }

# cached_tarball prints the path of the package tarball for this suite,
# mirror and package set in $DEBOOTSTRAP_CACHE, making it first when it is
# missing or older than a week. One process makes it; the others wait.
cached_tarball() {
	key=$(printf '%s\n' "$SUITE" "$MIRROR" "$INCLUDE" buildd "$(dpkg --print-architecture)" | sha256sum | cut -c1-16)
	tar="$DEBOOTSTRAP_CACHE/$SUITE-$key.tgz"
	mkdir -p "$DEBOOTSTRAP_CACHE"
	(
		flock 9
		if [ -z "$(find "$tar" -mtime -7 2>/dev/null)" ]; then
			work=$(mktemp -d "$DEBOOTSTRAP_CACHE/.work-XXXXXX")
			trap 'rm -rf "$work"' EXIT
			echo "debootstrap --make-tarball: downloading $SUITE from $MIRROR into the cache" >&2
			debootstrap --variant=buildd --include="$INCLUDE" --make-tarball="$work/t.tgz" \
				"$SUITE" "$work/root" "$MIRROR" >&2
			mv "$work/t.tgz" "$tar"
		fi
	) 9>"$DEBOOTSTRAP_CACHE/.lock"
	echo "$tar"
}

echo "debootstrap --variant=buildd $SUITE from $MIRROR (include: $INCLUDE)"
if [ -n "${DEBOOTSTRAP_CACHE:-}" ]; then
	tar=$(cached_tarball)
	echo "using the cached packages in $tar"
	debootstrap --variant=buildd --include="$INCLUDE" --unpack-tarball="$tar" "$SUITE" "$ROOT" "$MIRROR"
else
	debootstrap --variant=buildd --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR"
fi
chroot "$ROOT" /bin/sh -c "groupadd -g $BUILD_UID $BUILD_USER 2>/dev/null || true; \
	useradd -u $BUILD_UID -g $BUILD_UID -d /builddir -s /bin/sh $BUILD_USER 2>/dev/null || true; \
	mkdir -p /builddir && chown $BUILD_UID:$BUILD_UID /builddir; apt-get clean"
echo "bootstrapped Debian $SUITE in $ROOT"
