#!/usr/bin/env bash
# `make demo`: the main job end to end, with no daemon and no registry. Extended as features land.
# Today: make a busybox-static rootfs, import it as an image, list, inspect and unpack it, and (until
# `imagekit run` lands) run its CMD in the unpacked rootfs with chroot.
set -euo pipefail
root=$(mktemp -d "${TMPDIR:-/tmp}/imagekit-demo.XXXXXX")
trap 'rm -rf "$root"' EXIT
export IMAGEKIT_ROOT="$root/store"
echo "== imagekit $(imagekit --version | awk '{print $NF}'), store at $IMAGEKIT_ROOT"

busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
    echo "busybox-static is not installed (make demo installs it); nothing more to show"
    exit 0
fi

echo "== a rootfs with $busybox and symlinks for sh, echo, ls"
mkdir -p "$root/rootfs/bin" "$root/rootfs/etc"
cp "$busybox" "$root/rootfs/bin/busybox"
for applet in sh echo ls cat; do ln -s busybox "$root/rootfs/bin/$applet"; done
echo demo > "$root/rootfs/etc/hostname"
tar -C "$root/rootfs" --numeric-owner -czf "$root/rootfs.tar.gz" .

echo "== imagekit import rootfs.tar.gz demo/busybox:latest"
imagekit import -c 'CMD ["/bin/sh", "-c", "echo hello from busybox"]' -c 'ENV GREETING=hello' \
    "$root/rootfs.tar.gz" demo/busybox:latest
imagekit tag demo/busybox:latest demo/busybox:1.0

echo "== imagekit images"
imagekit images

echo "== imagekit inspect demo/busybox (abridged)"
imagekit inspect demo/busybox | python3 -c '
import json, sys
info = json.load(sys.stdin)[0]
print(json.dumps({k: info[k] for k in ("Id", "RepoTags", "Created", "Architecture", "Os", "Config", "RootFS", "Size")}, indent=4))'

echo "== imagekit unpack demo/busybox rootfs/"
imagekit unpack demo/busybox:latest "$root/unpacked"
ls "$root/unpacked" "$root/unpacked/bin"

if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    echo "== the image's CMD in the unpacked rootfs (chroot; imagekit run will replace this)"
    mapfile -d '' cmd < <(imagekit inspect demo/busybox | python3 -c '
import json, sys
sys.stdout.write("".join(arg + "\0" for arg in json.load(sys.stdin)[0]["Config"]["Cmd"]))')
    chroot "$root/unpacked" "${cmd[@]}"
fi
