#!/usr/bin/env bash
# sysroot-arm64.sh: builds an arm64 sysroot for cross-compiling imageapid and
# running it under qemu-aarch64, from Debian's own arm64 packages: apt-get
# download + dpkg -x, never installed (arm64 OpenCV cannot be installed beside
# the amd64 one: imgcodecs' GDAL/GDCM dependencies conflict).
#
#   scripts/sysroot-arm64.sh [DIR]   (default third_party/sysroot-arm64; as root)
#
# It unpacks the run-time closure of the OpenCV modules gocv links, and the
# -dev packages of those modules for headers and .so links. DIR/.pkgmap maps
# each shared library to its package and version (for the arm64 .deb's Depends).
set -euo pipefail
cd "$(dirname "$0")/.."

SYSROOT=${1:-third_party/sysroot-arm64}
MODULES=(core imgproc imgcodecs videoio highgui objdetect calib3d features2d dnn photo video flann)
LIBS=()
DEVS=()
# opencv2/opencv.hpp (which gocv includes) also names these modules' headers.
HEADERS_ONLY=(ml stitching)
for m in "${MODULES[@]}"; do
	LIBS+=("libopencv-$m""406:arm64")
	DEVS+=("libopencv-$m-dev:arm64")
done
for m in "${HEADERS_ONLY[@]}"; do
	DEVS+=("libopencv-$m-dev:arm64")
done
TOOLS=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user binutils-aarch64-linux-gnu)
say() { printf 'sysroot-arm64: %s\n' "$*"; }
want="${LIBS[*]} ${DEVS[*]}"

if [ -f "$SYSROOT/.done" ] && [ "$(cat "$SYSROOT/.done")" = "$want" ]; then
	say "$SYSROOT present: nothing to do"
	exit 0
fi
[ "$(id -u)" = 0 ] || { say "run as root (apt)" >&2; exit 1; }

missing=()
for p in "${TOOLS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	say "adding the arm64 architecture to apt"
	dpkg --add-architecture arm64
	apt-get update -qq
fi

say "resolving the run-time closure of ${#LIBS[@]} OpenCV modules"
mapfile -t closure < <(
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "${LIBS[@]}" | grep -E '^[a-z0-9].*:arm64$' | sort -u
)
# Architecture-independent packages (icons, fonts, data) are not needed to link or run.
say "${#closure[@]} arm64 packages, plus ${#DEVS[@]} -dev packages"

debs=$SYSROOT.debs
mkdir -p "$debs"
(cd "$debs" && apt-get download -qq "${closure[@]}" "${DEVS[@]}" >/dev/null)

rm -rf "$SYSROOT"
mkdir -p "$SYSROOT"
: >"$SYSROOT/.pkgmap.tmp"
for deb in "$debs"/*.deb; do
	dpkg-deb -x "$deb" "$SYSROOT"
	pkg=$(dpkg-deb -f "$deb" Package)
	ver=$(dpkg-deb -f "$deb" Version)
	dpkg-deb -c "$deb" | awk '{print $6}' | { grep -E '\.so(\.[0-9]+)*$' || true; } | sed 's#^\.##' |
		while read -r f; do echo "$f $pkg $ver"; done >>"$SYSROOT/.pkgmap.tmp"
done
# Runtime packages first, so a library maps to its package rather than a -dev one.
grep -v -- '-dev ' "$SYSROOT/.pkgmap.tmp" >"$SYSROOT/.pkgmap"
rm "$SYSROOT/.pkgmap.tmp"
# dpkg -x runs no maintainer scripts, so the links update-alternatives would
# make are missing: point BLAS and LAPACK at the reference implementations.
multi=$SYSROOT/usr/lib/aarch64-linux-gnu
ln -sf blas/libblas.so.3 "$multi/libblas.so.3"
ln -sf lapack/liblapack.so.3 "$multi/liblapack.so.3"

# A pkg-config file for exactly these modules: Debian's opencv4.pc (in
# libopencv-dev, whose closure is far larger) names every contrib module too.
# Paths are sysroot-relative; PKG_CONFIG_SYSROOT_DIR prefixes them.
pcdir=$SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig
mkdir -p "$pcdir"
{
	echo "prefix=/usr"
	echo "libdir=\${prefix}/lib/aarch64-linux-gnu"
	echo "includedir=\${prefix}/include/opencv4"
	echo
	echo "Name: OpenCV"
	echo "Description: OpenCV modules gocv links (imageapid arm64 sysroot)"
	echo "Version: 4.6.0"
	echo "Libs: -L\${libdir}$(printf ' -lopencv_%s' "${MODULES[@]}")"
	echo "Cflags: -I\${includedir} -I\${prefix}/include/aarch64-linux-gnu/opencv4"
} >"$pcdir/opencv4.pc"
echo "$want" >"$SYSROOT/.done"
say "$SYSROOT: $(du -sh "$SYSROOT" | cut -f1) from $(ls "$debs" | wc -l) packages"
