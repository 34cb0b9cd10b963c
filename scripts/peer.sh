#!/usr/bin/env bash
# The peer the benchmarks compare with: Human 3.3.6 on TF.js's WASM backend in
# Node, exact versions, installed into a git-ignored folder only when asked
# (`make peer`, which `make bench` runs); tests never need it.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(@vladmandic/human@3.3.6 @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0)
dir=third_party/peer
want="${PACKAGES[*]}"
if [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "$want" ]; then
	echo "peer: $want present in $dir"
	exit 0
fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"imageapid-peer","private":true}' >"$dir/package.json"
(cd "$dir" && npm install --silent --no-audit --no-fund --save-exact "${PACKAGES[@]}" >/dev/null)
echo "$want" >"$dir/.done"
echo "peer: $want installed in $dir"
