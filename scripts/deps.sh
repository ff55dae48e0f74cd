#!/bin/sh
# Installs the Debian packages thinroot's tests and demo use: only those
# that are missing, with apt-get update at most once.
#   scripts/deps.sh [EXTRA-PACKAGE...]
set -eu
# rpm, createrepo-c, dnf and dnf-plugins-core build and use the test RPM
# distribution; its seeds (the Debian packages it is made of) come from
# testdata/rpmdist/seeds. prometheus gives promtool, which checks the
# daemon's /metrics.
SEEDS=$(sed 's/#.*//' "$(dirname "$0")/../testdata/rpmdist/seeds")
PACKAGES="xfsprogs e2fsprogs btrfs-progs busybox-static python3 util-linux mount coreutils file debootstrap dpkg-dev
	rpm createrepo-c dnf dnf-plugins-core prometheus $SEEDS $*"
need=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || need="$need $p"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing packages:$need (run as root, or install them)" >&2
	exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
