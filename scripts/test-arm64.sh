#!/usr/bin/env bash
# test-arm64.sh: runs the arm64 daemon under qemu-aarch64 (with the arm64
# sysroot as its root for libraries) next to the amd64 build, posts the same
# real images to both, and compares their JSON: same structure and strings,
# numbers within a small tolerance (float differences between x86 and ARM
# kernels only).
#
#   scripts/test-arm64.sh SYSROOT ARM64_BIN AMD64_BIN
set -euo pipefail
cd "$(dirname "$0")/.."
SYSROOT=${1:?sysroot}
ARM=${2:?arm64 binary}
AMD=${3:?amd64 binary}
SERVICES=(face-detector-face-fitter face-detector-template-extractor)
IMAGES=(astronaut.png messi5.jpg camera.png coffee.png)
# Numbers may differ by TOL x max(1, |value|); templates (192 float32 after a
# 12-byte header) must have a cosine of at least MIN_COSINE.
TOL=${TOL:-0.01}
MIN_COSINE=${MIN_COSINE:-0.999}
say() { printf 'test-arm64: %s\n' "$*"; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

config() { # config PORT
	cat <<YAML
http: {listen: 127.0.0.1:$1, request_timeout: 300s}
models: {manifest: $PWD/models/manifest.json, dir: $PWD/models/build}
services: [$(IFS=,; echo "${SERVICES[*]}")]
state_dir: $tmp/state-$1
mqtt: {enabled: false}
YAML
}
config 18481 >"$tmp/amd64.yaml"
config 18482 >"$tmp/arm64.yaml"

LD_LIBRARY_PATH=$PWD/third_party/tflite/linux_amd64 "$AMD" -config "$tmp/amd64.yaml" 2>"$tmp/amd64.log" &
pids+=($!)
qemu-aarch64 -L "$SYSROOT" -E LD_LIBRARY_PATH="$PWD/third_party/tflite/linux_arm64" "$ARM" -config "$tmp/arm64.yaml" 2>"$tmp/arm64.log" &
pids+=($!)

wait_ready() { # wait_ready PORT LOG
	for _ in $(seq 1 600); do
		curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
		sleep 0.5
	done
	say "daemon on port $1 never became ready:"; tail -20 "$2" >&2
	exit 1
}
start=$(date +%s)
wait_ready 18481 "$tmp/amd64.log"
wait_ready 18482 "$tmp/arm64.log"
say "both daemons ready after $(($(date +%s) - start)) s (arm64 under qemu)"
say "arm64 models: $(curl -s http://127.0.0.1:18482/readyz)"

fail=0
for svc in "${SERVICES[@]}"; do
	for img in "${IMAGES[@]}"; do
		f=third_party/fixtures/$img
		t0=$(date +%s.%N)
		curl -s -F "image=@$f" "http://127.0.0.1:18481/$svc/process/image" >"$tmp/a.json"
		t1=$(date +%s.%N)
		curl -s -F "image=@$f" "http://127.0.0.1:18482/$svc/process/image" >"$tmp/b.json"
		t2=$(date +%s.%N)
		if ! python3 - "$tmp/a.json" "$tmp/b.json" "$TOL" "$svc $img" "$t0" "$t1" "$t2" "$MIN_COSINE" <<'PY'; then fail=1; fi
import base64, json, math, struct, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
tol, what = float(sys.argv[3]), sys.argv[4]
t0, t1, t2 = map(float, sys.argv[5:8])
worst = [0.0, ""]
min_cos = float(sys.argv[8])
cosines = []
def floats(t):
    raw = base64.b64decode(t)[12:]
    return struct.unpack(f"<{len(raw) // 4}f", raw)
def cmp(x, y, path):
    if path.endswith(".$template"):
        u, v = floats(x), floats(y)
        cos = sum(p * q for p, q in zip(u, v)) / math.sqrt(sum(p * p for p in u) * sum(q * q for q in v))
        cosines.append(cos)
        if cos < min_cos:
            raise SystemExit(f"{what}: {path}: template cosine {cos:.6f} < {min_cos}")
    elif isinstance(x, bool) or isinstance(y, bool) or isinstance(x, str) or x is None:
        if x != y:
            raise SystemExit(f"{what}: {path}: {x!r} vs {y!r}")
    elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
        d = abs(x - y) / max(1.0, abs(x))
        if d > worst[0]:
            worst[:] = [d, path]
        if d > tol:
            raise SystemExit(f"{what}: {path}: {x} vs {y} (relative difference {d:.2g} > {tol})")
    elif isinstance(x, dict) and isinstance(y, dict):
        if list(x) != list(y):
            raise SystemExit(f"{what}: {path}: keys {list(x)} vs {list(y)}")
        for k in x:
            cmp(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            raise SystemExit(f"{what}: {path}: {len(x)} vs {len(y)} items")
        for i, (p, q) in enumerate(zip(x, y)):
            cmp(p, q, f"{path}[{i}]")
    else:
        raise SystemExit(f"{what}: {path}: types {type(x).__name__} vs {type(y).__name__}")
cmp(a, b, "$")
objs = len(a.get("objects", [])) if isinstance(a, dict) else 0
tmpl = f", template cosine {min(cosines):.6f}" if cosines else ""
print(f"test-arm64: {what}: match, {objs} objects, largest difference {worst[0]:.2g} at {worst[1] or '-'}{tmpl}; "
      f"amd64 {t1 - t0:.2f} s, arm64 under qemu {t2 - t1:.2f} s")
PY
	done
done
[ "$fail" = 0 ] || { say "arm64 and amd64 disagree"; exit 1; }
say "arm64 output matches amd64 within $TOL on ${#IMAGES[@]} images x ${#SERVICES[@]} services"
