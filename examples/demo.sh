#!/usr/bin/env bash
# `make demo`: the main job end to end, with no daemon and no registry. Extended as features land.
set -euo pipefail
root=$(mktemp -d /tmp/imagekit-demo.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "== imagekit $(imagekit --version | awk '{print $NF}'), store at $root"
