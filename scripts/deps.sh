#!/usr/bin/env bash
# deps.sh: installs what imageapid needs to build and test on Debian 12, as root.
# Idempotent: a second run checks each step and says it has nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

TFLITE_PKG="tfjs-tflite-node@0.0.2"
TFLITE_INTEGRITY="sha512-Zed9biOz9lkWsekvPwdEmxXnsjXJnZO8iOV0s2Y20QU15cwiPedzFEBYiGbK7smYpkJpQNNY9SukoKmUi9bk9w=="
# chromium and ffmpeg: the kiosk page's real-browser test (a fake camera fed from a converted clip).
APT_PACKAGES=(libopencv-dev pkg-config mosquitto mosquitto-clients gstreamer1.0-plugins-base chromium ffmpeg)
# Registry fixtures for tests and the default camera: fetched as .deb files and unpacked, never installed.
FIXTURE_DEBS=(python3-skimage opencv-doc)

THIRD=third_party
say() { printf 'deps: %s\n' "$*"; }

# npm_integrity FILE prints the npm-style sha512 integrity string of FILE.
npm_integrity() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

install_apt() {
	local missing=()
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "apt packages present (${APT_PACKAGES[*]}): nothing to do"
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		say "missing apt packages: ${missing[*]}; run as root or install them" >&2
		exit 1
	fi
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_tflite() {
	local dir=$THIRD/tflite
	if [ -f "$dir/.integrity" ] && [ "$(cat "$dir/.integrity")" = "$TFLITE_INTEGRITY" ]; then
		say "TFLite 2.9 C library present in $dir: nothing to do"
		return
	fi
	say "fetching $TFLITE_PKG"
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "$TFLITE_PKG" >/dev/null)
	local tgz
	tgz=$(ls "$tmp"/*.tgz)
	local got
	got=$(npm_integrity "$tgz")
	if [ "$got" != "$TFLITE_INTEGRITY" ]; then
		say "integrity mismatch for $TFLITE_PKG: want $TFLITE_INTEGRITY, got $got" >&2
		exit 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -xzf "$tgz" -C "$tmp"
	local arch
	for arch in linux_amd64 linux_arm64; do
		mkdir -p "$dir/$arch"
		cp "$tmp/package/cc_deps/$arch/"*.so "$dir/$arch/"
	done
	cp -r "$tmp/package/cc_deps/include" "$dir/include"
	# The project's own declarations for what the package's headers lack (see models/cshim).
	cp -r models/cshim/. "$dir/include/"
	echo "$TFLITE_INTEGRITY" >"$dir/.integrity"
	rm -rf "$tmp"
	say "TFLite 2.9 C library unpacked into $dir"
}

install_fixtures() {
	local dir=$THIRD/fixtures
	if [ -f "$dir/.done" ]; then
		say "registry fixtures present in $dir: nothing to do"
		return
	fi
	say "fetching fixture packages ${FIXTURE_DEBS[*]}"
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq "${FIXTURE_DEBS[@]}" >/dev/null 2>&1) || {
		apt-get update -qq
		(cd "$tmp" && apt-get download -qq "${FIXTURE_DEBS[@]}" >/dev/null)
	}
	mkdir -p "$tmp/root" "$dir"
	for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
	local skd
	skd=$(find "$tmp/root" -type d -path '*skimage/data' | head -n1)
	cp "$skd/astronaut.png" "$skd/chelsea.png" "$skd/camera.png" "$skd/coffee.png" "$dir/"
	local ocv
	ocv=$(find "$tmp/root" -type f -name messi5.jpg | head -n1)
	cp "$ocv" "$(dirname "$ocv")/vtest.avi" "$dir/"
	touch "$dir/.done"
	rm -rf "$tmp"
	say "fixtures unpacked into $dir: $(ls "$dir" | tr '\n' ' ')"
}

# The TF.js reference for the model compiler's parity gate: packages pinned
# exactly, installed into a git-ignored folder (no install scripts, nothing
# fetched beyond the registry's tarballs).
# face-api's own code is the reference of the networks whose graph the
# compiler reads from a hand-written description (models/graphs): its Node
# entry requires @tensorflow/tfjs and the wasm backend (a .wasm file inside
# the package), though the reference runs it on the CPU backend.
# ONNX Runtime is the reference of the ONNX builds; onnxruntime-node 1.14.0
# carries its native library for linux x64 and arm64 inside the tarball.
TFJS_PACKAGES=(@tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0
	@tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 @vladmandic/face-api@1.7.15
	onnxruntime-common@1.14.0 onnxruntime-node@1.14.0)
install_tfjs_reference() {
	local dir=$THIRD/tfjs
	local want="${TFJS_PACKAGES[*]}"
	if [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "$want" ]; then
		say "TF.js reference present in $dir: nothing to do"
		return
	fi
	say "installing ${TFJS_PACKAGES[*]} into $dir"
	mkdir -p "$dir"
	[ -f "$dir/package.json" ] || echo '{"name":"imageapid-tfjs-reference","private":true}' >"$dir/package.json"
	(cd "$dir" && npm install --silent --no-audit --no-fund --ignore-scripts --save-exact "${TFJS_PACKAGES[@]}" >/dev/null)
	echo "$want" >"$dir/.done"
	say "TF.js reference installed in $dir"
}

install_apt
install_tflite
install_fixtures
install_tfjs_reference
