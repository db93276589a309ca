#!/bin/sh
# `make mutation`'s jail: runs its command in a mount namespace of its own where the machine's root file system
# is read-only. A mutant of a containment guard (layers/apply, layers/rootfs, the sandbox) applies the hostile
# test layers outside their root: on Dec 6 two runs wrote /x and /outside.txt and changed the modes of /,
# /etc, /etc/passwd and /usr/bin/env. Here such a write fails (EROFS), which kills the mutant. What the tests
# must write stays writable: /tmp (the run's TMPDIR), /run (network namespaces and leases), /dev/shm, the
# test caches under /var/cache, and this checkout (mutants/, bytecode). Other mounts (/sys/fs/cgroup, /proc)
# are untouched.
set -eu
exec unshare --mount --propagation private -- sh -c '
for dir in /tmp /run /dev/shm /var/cache/imagekit-tests "$PWD"; do
    if [ -d "$dir" ]; then mount --bind "$dir" "$dir"; fi
done
mount -o remount,bind,ro /
cd "$PWD"  # the working directory, looked up again: the old one is on the read-only mount
exec "$@"' jail "$@"
