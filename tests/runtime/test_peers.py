"""Cross-check with runc: the same image, unpacked by umoci into a bundle, run by `runc run` with the same
hostname, capabilities and network, prints what `imagekit run` prints."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from imagekit.runtime.process import RUN_CAPABILITIES
from imagekit.sandbox.mounts import MASKED, READONLY
from tests.runtime.conftest import Run, ok

#: What both runtimes must agree on: PID 1, cwd, identity, hostname, capability sets, no_new_privs,
#: masked and read-only /proc paths, /dev's contents, the mount points, and the view of processes (ls
#: alone, not in a pipeline whose other side may or may not have started: sh and ls).
SCRIPT = (
    "echo pid=$$; pwd; id; hostname; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; wc -c < /proc/keys; "
    "ls /proc/acpi 2>/dev/null | wc -l; (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo proc-sys-rw || echo proc-sys-ro; "
    "ls /dev | grep -v -e '^core$' | tr '\\n' ' '; echo; ls /proc > /tmp/procs; grep -c '^[0-9]' /tmp/procs; "
    "for m in /proc /dev /dev/pts /dev/shm /dev/mqueue /sys; do grep -q \" $m \" /proc/mounts && echo mounted $m; done; "
    "touch /new-file && echo root-writable"
)


def test_runc_runs_the_same_image_with_the_same_output(ik: Run, root: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{root}:docker.io/library/busybox:latest", str(bundle)], check=True,
                   capture_output=True, timeout=120)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["sh", "-c", SCRIPT])
    spec["process"]["capabilities"] = {key: [f"CAP_{c}" for c in RUN_CAPABILITIES] for key in ("bounding", "effective", "permitted")}
    spec["hostname"] = "xcheck"
    spec["linux"].update(maskedPaths=list(MASKED), readonlyPaths=list(READONLY))  # `runc spec`'s (umoci's are older)
    (bundle / "config.json").write_text(json.dumps(spec))
    name = f"imagekit-xcheck-{uuid.uuid4().hex[:8]}"
    try:
        theirs = subprocess.run(["runc", "run", "-b", str(bundle), name], capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["runc", "delete", "-f", name], capture_output=True)
    assert theirs.returncode == 0, theirs.stderr
    ours = ok(ik("run", "--rm", "--network", "none", "--hostname", "xcheck", "busybox", "sh", "-c", SCRIPT))
    assert ours == theirs.stdout
    assert "pid=1\n/\nuid=0(root) gid=0(root)" in ours and "proc-sys-ro" in ours and "root-writable" in ours
