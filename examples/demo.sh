#!/usr/bin/env bash
# `make demo`: the main job end to end, with no daemon and no registry. Extended as features land.
# Today: make a busybox-static rootfs and import it as the base image, build examples/hello (RUN with a
# heredoc, COPY, metadata) with `imagekit build`, rebuild it from the cache, and (as root) run the built
# image with `imagekit run --rm --network none`: it needs no network, and the demo leaves the host's alone
# (the default, the bridge imagekit0, would add a link and NAT rules to it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d "${TMPDIR:-/tmp}/imagekit-demo.XXXXXX")
trap 'rm -rf "$root"' EXIT
export IMAGEKIT_ROOT="$root/store"
echo "== imagekit $(imagekit --version | awk '{print $NF}'), store at $IMAGEKIT_ROOT"

busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
    echo "busybox-static is not installed (make demo installs it); nothing more to show"
    exit 0
fi

echo "== a base rootfs with $busybox and its applets"
mkdir -p "$root/rootfs/bin" "$root/rootfs/etc" "$root/rootfs/tmp"
cp "$busybox" "$root/rootfs/bin/busybox"
for applet in sh echo ls cat id hostname uname wc; do ln -s busybox "$root/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/rootfs/etc/passwd"
echo 'root:x:0:' > "$root/rootfs/etc/group"
tar -C "$root/rootfs" --numeric-owner -czf "$root/rootfs.tar.gz" .

echo "== imagekit import rootfs.tar.gz demo/busybox:latest"
imagekit import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' "$root/rootfs.tar.gz" demo/busybox:latest

echo "== examples/hello/Builderfile"
cat "$here/hello/Builderfile"

echo "== imagekit build -t demo/hello:latest examples/hello"
imagekit build -t demo/hello:latest "$here/hello"

echo "== the same build again: every step comes from the cache"
imagekit build -t demo/hello:latest "$here/hello"

echo "== imagekit images"
imagekit images

echo "== imagekit inspect demo/hello (abridged)"
imagekit inspect demo/hello | python3 -c '
import json, sys
info = json.load(sys.stdin)[0]
print(json.dumps({k: info[k] for k in ("Id", "RepoTags", "Config", "RootFS")}, indent=4))'

if [ "$(id -u)" = 0 ]; then
    echo "== imagekit run --rm --network none demo/hello:latest"
    imagekit run --rm --network none demo/hello:latest
fi
