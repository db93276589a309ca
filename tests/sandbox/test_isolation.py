"""The isolation ladder below `namespaces`: `rootless` as a real unprivileged user, and `chroot`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from imagekit.errors import SandboxError
from imagekit.sandbox import run
from imagekit.values import asdict, replace
from tests.sandbox.conftest import Box
from tests.sandbox.test_lifecycle import CALLER, ROOT, _with_marker

AS_USER = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]


def _as_user(box: Box, script: str, **fields: object) -> subprocess.CompletedProcess[str]:
    """Runs the spec from a Python process that is uid 1000 without any capability (in a user namespace
    mapped onto the test's own uid, so it can read the venv and the test's files)."""
    spec = asdict(box.spec(script, isolation="rootless", **fields))
    command = [*AS_USER, sys.executable, "-c", "import os; print('caller', os.getuid(), flush=True)\n" + CALLER, json.dumps(spec)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("network", ["none", "host"])
def test_rootless_runs_as_root_of_its_own_user_namespace(box: Box, network: str) -> None:
    script = "id; echo pid=$$; hostname; echo hi > /new; rm /bin/true; grep -c . /proc/self/uid_map; touch /sys/x"
    result = _as_user(box, script, hostname="rootless", network=network)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == ["caller 1000", "uid=0 gid=0", "pid=1", "rootless", "1", "status 1"], result.stdout
    assert "Read-only file system" in result.stderr
    assert (box.upper / "new").read_text() == "hi\n"
    whiteout = os.lstat(box.upper / "bin" / "true")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0


def test_rootless_maps_only_uid_0(box: Box) -> None:
    with pytest.raises(SandboxError, match="rootless isolation maps only the caller"):
        run(box.spec("id", isolation="rootless", uid=1000))


def test_rootless_setup_errors_are_one_line(box: Box, tmp_path: Path) -> None:
    result = _as_user(box, "true", rootfs=replace(box.rootfs, lowers=(str(tmp_path / "missing"),)))
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last.startswith("imagekit.errors.SandboxError: sandbox: ") and "missing: No such file or directory" in last


def test_chroot_has_a_mount_namespace_and_root_but_host_pids(box: Box) -> None:
    marker = f"MARKER={uuid.uuid4()}"
    status, out, result = box.sh("echo pid=$$; hostname; echo x > /x; ls /proc/1/; sleep 100 &", isolation="chroot", hostname="chrooted", env=("PATH=/bin", marker))
    lines = out.splitlines()
    assert status == 0 and lines[0] != "pid=1" and lines[1] == "chrooted" and "cmdline" in out, out
    assert (box.upper / "x").read_text() == "x\n" and result.created == ("/proc", "/dev", "/sys")
    assert _with_marker(marker) == []  # the background job went with the process group


CALL_AS_USER = """
import os, sys
from pathlib import Path
from imagekit.sandbox import Rootfs, call
def copy(root, name):
    Path(root, name).write_text("copied\\n")
    return os.getuid(), sorted(os.listdir(Path(root, "bin")))[:2]
print(os.getuid(), *call(Rootfs(lowers=(sys.argv[1],), upper=sys.argv[2], work=sys.argv[3]), copy, "file"))
"""


def test_call_by_an_unprivileged_caller_mounts_in_a_user_namespace(box: Box) -> None:
    command = [*AS_USER, sys.executable, "-c", CALL_AS_USER, *box.rootfs.lowers, box.rootfs.upper, box.rootfs.work]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1000 0 ['busybox', 'cat']\n"
    assert (box.upper / "file").read_text() == "copied\n"


def test_namespaces_without_root_say_what_to_use_instead(box: Box) -> None:
    command = [*AS_USER, sys.executable, "-c", CALLER, json.dumps(asdict(box.spec("true")))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1
    assert last == "imagekit.errors.SandboxError: sandbox: isolation 'namespaces' cannot create its namespaces: Operation not permitted; without root, use isolation 'rootless'"
