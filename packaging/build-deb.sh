#!/bin/sh
# build-deb.sh [OUTPUT_DIR]
#
# Builds the quorum .deb from this checkout and puts it (with its -dbgsym package) into
# OUTPUT_DIR (default: ./dist). Installs missing build dependencies with apt-get (needs
# root), copies packaging/debian to ./debian for dpkg-buildpackage, and removes ./debian
# again afterwards. The Swift build uses the scratch path .build-deb (kept as a cache).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${1:-dist}
case $out in /*) ;; *) out=$top/$out ;; esac

if [ -e debian ] && [ ! -f debian/.from-packaging ]; then
    echo "build-deb.sh: ./debian exists and was not made by this script; remove it first" >&2
    exit 1
fi

# The swift.org toolchain is no Debian package, so it is not a Build-Depends.
PATH=$PATH:/opt/swift/usr/bin
export PATH
command -v swift >/dev/null || { echo "build-deb.sh: swift not found (PATH, /opt/swift/usr/bin)" >&2; exit 1; }

cleanup() { rm -rf "$top/debian"; }
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
rm -rf debian
cp -R packaging/debian debian
touch debian/.from-packaging

# Build tools first (dpkg-checkbuilddeps comes with dpkg-dev), then the declared ones.
missing=""
command -v dpkg-buildpackage >/dev/null || missing="dpkg-dev"
command -v dh >/dev/null || missing="$missing debhelper"
if [ -n "$missing" ]; then
    apt-get update && apt-get install -y --no-install-recommends $missing
fi
if ! dpkg-checkbuilddeps 2>/dev/null; then
    apt-get update
    # Installs what debian/control's Build-Depends names (first alternatives).
    apt-get build-dep -y --no-install-recommends "$top"
fi

dpkg-buildpackage -us -uc -b

mkdir -p "$out"
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
for deb in "../quorum_${version}_${arch}.deb" "../quorum-dbgsym_${version}_${arch}.deb"; do
    [ -f "$deb" ] && mv "$deb" "$out/"
done
rm -f "../quorum_${version}_${arch}.buildinfo" "../quorum_${version}_${arch}.changes"
echo "build-deb.sh: built $(ls "$out"/quorum_"${version}"_"${arch}".deb)"
