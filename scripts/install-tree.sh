#!/usr/bin/env bash
# install-tree.sh: installs (or lists, or removes) imageapid's files, the one
# file set shared by `make install`, `make uninstall` and `make deb`.
#
#   scripts/install-tree.sh install|uninstall|list
#
# Environment: BIN (the daemon binary, built with its run path set to
# $PREFIX/lib/imageapid), ARCH (amd64|arm64), DESTDIR (default empty),
# PREFIX (/usr), SYSCONFDIR (/etc), UNITDIR (/lib/systemd/system).
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: install-tree.sh install|uninstall|list}
ARCH=${ARCH:-$(go env GOARCH)}
BIN=${BIN:-bin/linux_$ARCH/imageapid}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/lib/systemd/system}
LIBDIR=$PREFIX/lib/imageapid
MODELDIR=$LIBDIR/models
TFLITE=third_party/tflite/linux_$ARCH

# files prints "mode source destination" for every installed file.
files() {
	echo "0755 $BIN $PREFIX/bin/imageapid"
	echo "0644 $TFLITE/libtensorflowlite_c.so $LIBDIR/libtensorflowlite_c.so"
	echo "0644 models/manifest.json $MODELDIR/manifest.json"
	local f
	for f in $(go_manifest_files); do
		echo "0644 models/build/$f $MODELDIR/$f"
	done
	echo "0644 systemd/imageapid.service $UNITDIR/imageapid.service"
	echo "0644 systemd/imageapid.socket $UNITDIR/imageapid.socket"
	echo "0644 - $SYSCONFDIR/imageapid/imageapid.yaml"
}

# go_manifest_files lists the files the manifest names (models and data).
go_manifest_files() {
	python3 -c 'import json,sys; print("\n".join(sorted(m["file"] for m in json.load(open(sys.argv[1]))["models"])))' models/manifest.json
}

# installed_config rewrites the development config for the installed layout:
# models from $MODELDIR, state from systemd, and no sample camera.
installed_config() {
	{
		echo "# imageapid configuration ($SYSCONFDIR/imageapid/imageapid.yaml, a conffile: local"
		echo "# edits survive upgrades). Every key is optional; the values shown are the"
		echo "# defaults, except the models paths. Reload cameras with: systemctl reload imageapid"
		sed -e '1,3d' \
			-e "s#^  manifest: models/manifest.json#  manifest: $MODELDIR/manifest.json#" \
			-e "s#^  dir: models/build#  dir: $MODELDIR#" \
			-e '/^cameras:/,$d' configs/imageapid.yaml
		cat <<'YAML'
cameras: []
# For example:
# cameras:
#   - id: door
#     name: Front door
#     url: rtsp://user:password@192.0.2.10:554/stream1
#     estimators: [face-detector, age-estimator]
YAML
	}
}

case "$action" in
list)
	files | awk '{print $3}'
	;;
install)
	[ -x "$BIN" ] || { echo "install-tree: $BIN missing (build it first)" >&2; exit 1; }
	files | while read -r mode src dst; do
		install -d -m 0755 "$DESTDIR$(dirname "$dst")"
		if [ "$src" = - ]; then
			# Never overwrite a box's own config: leave the new one beside it.
			target=$DESTDIR$dst
			if [ -e "$target" ]; then
				target=$target.dist
				echo "install-tree: keeping $DESTDIR$dst; the new default is $target" >&2
			fi
			installed_config >"$target.tmp"
			chmod "$mode" "$target.tmp"
			mv "$target.tmp" "$target"
		elif [ "$dst" = "$UNITDIR/imageapid.service" ]; then
			sed -e "s#^ExecStart=/usr/bin/imageapid -config /etc/imageapid/#ExecStart=$PREFIX/bin/imageapid -config $SYSCONFDIR/imageapid/#" "$src" >"$DESTDIR$dst"
			chmod "$mode" "$DESTDIR$dst"
		else
			install -m "$mode" "$src" "$DESTDIR$dst"
		fi
	done
	;;
uninstall)
	files | while read -r _ _ dst; do rm -f "$DESTDIR$dst"; done
	rm -f "$DESTDIR$SYSCONFDIR/imageapid/imageapid.yaml.dist"
	rmdir "$DESTDIR$MODELDIR" "$DESTDIR$LIBDIR" "$DESTDIR$SYSCONFDIR/imageapid" 2>/dev/null || true
	;;
*)
	echo "install-tree: unknown action $action" >&2
	exit 2
	;;
esac
