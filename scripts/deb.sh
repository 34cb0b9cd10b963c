#!/usr/bin/env bash
# deb.sh: builds imageapid_<version>_<arch>.deb with dpkg-deb alone, from the
# file set of install-tree.sh and the templates in packaging/.
#
#   VERSION=0.1.0 ARCH=amd64 BIN=bin/linux_amd64/imageapid OUT=dist scripts/deb.sh
#
# Depends are computed from the shared libraries the binary and TFLite need:
# on amd64 through the host's dpkg database, on arm64 through the package map
# that scripts/sysroot-arm64.sh writes into the sysroot.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${ARCH:-$(go env GOARCH)}
VERSION=${VERSION:?set VERSION}
BIN=${BIN:-bin/linux_$ARCH/imageapid}
OUT=${OUT:-dist}
SYSROOT=${SYSROOT:-third_party/sysroot-arm64}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
DESTDIR=$stage PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system ARCH=$ARCH BIN=$BIN \
	scripts/install-tree.sh install

# needed prints the shared libraries an ELF file asks for.
needed() { objdump -p "$1" | awk '/NEEDED/ {print $2}'; }

# package_of LIB prints "package (>= version)" for a shared library of $ARCH.
package_of() {
	local lib=$1 pkg ver
	if [ "$ARCH" = "$(dpkg --print-architecture)" ]; then
		# Only the architecture's own library directories (not a cross toolchain's).
		local triplet
		triplet=$(gcc -print-multiarch)
		pkg=$(dpkg -S "*/lib/$triplet/$lib" 2>/dev/null | awk -v want="/lib/$triplet/$lib" '
			{ n = length($NF); w = length(want)
			  if (substr($NF, n - w + 1) == want) { sub(/:.*/, "", $1); print $1; exit } }') || true
		[ -n "$pkg" ] || return 0
		ver=$(dpkg-query -W -f='${Version}' "$pkg:$ARCH" 2>/dev/null || dpkg-query -W -f='${Version}' "$pkg")
	else
		local line
		line=$(grep -m1 "/$lib " "$SYSROOT/.pkgmap" || true)
		[ -n "$line" ] || return 0
		pkg=$(echo "$line" | awk '{print $2}')
		ver=$(echo "$line" | awk '{print $3}')
	fi
	echo "$pkg (>= ${ver%%-*})"
}

depends=$(
	{
		needed "$stage/usr/bin/imageapid"
		needed "$stage/usr/lib/imageapid/libtensorflowlite_c.so"
	} | grep -v '^libtensorflowlite_c.so$' | sort -u | while read -r lib; do package_of "$lib"; done |
		sort -u | paste -sd, - | sed 's/,/, /g'
)
[ -n "$depends" ] || { echo "deb: could not compute Depends" >&2; exit 1; }

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
	packaging/control.in >"$stage/DEBIAN/control"
install -m 0644 packaging/conffiles "$stage/DEBIAN/conffiles"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) >"$stage/DEBIAN/md5sums"

mkdir -p "$OUT"
deb="$OUT/imageapid_${VERSION}_${ARCH}.deb"
# gzip: xz takes about a minute on the models for 10% less.
dpkg-deb --root-owner-group -Zgzip -z9 --build "$stage" "$deb" >/dev/null
echo "$deb"
