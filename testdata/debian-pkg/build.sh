#!/bin/sh
# Build the Debian source package mounted read-only at $SOURCE and put the
# binary packages into $RESULTS. Runs inside the buildroot as the build user.
set -eu
work=/builddir/build
rm -rf "$work" && mkdir -p "$work"
cp -a "$SOURCE" "$work/pkg"
cd "$work/pkg"
dpkg-buildpackage -us -uc -b
cp ../*.deb ../*.buildinfo ../*.changes "$RESULTS/"
ls -l "$RESULTS"
