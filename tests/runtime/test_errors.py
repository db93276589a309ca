"""Bad input to `imagekit run`: one line on stderr, exit 125, and nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.conftest import Run, ok, one_line_error


def nothing_left(root: Path) -> None:
    for name in ("containers", "snapshots", "volumes"):
        directory = root / name
        assert not directory.exists() or [p.name for p in directory.iterdir()] in ([], ["lock"]), name


@pytest.mark.parametrize(("args", "message"), [
    (("no-such-image:1", "true"), "cannot reach"),  # after "Unable to find image ... locally", the pull fails
    (("-v", "a:b:c:d", "busybox", "true"), "invalid volume specification"),
    (("-v", "/tmp:relative", "busybox", "true"), "is not an absolute path"),
    (("-v", "/tmp:/x:rx", "busybox", "true"), "invalid mode"),
    (("--mount", "type=nfs,target=/x", "busybox", "true"), "type must be bind, volume or tmpfs"),
    (("-v", "/no/such/host/path:/x", "busybox", "true"), "bind source path does not exist"),
    (("-m", "1m", "busybox", "true"), "Minimum memory limit allowed is 6MB"),
    (("-m", "lots", "busybox", "true"), "invalid memory size"),
    (("-u", "nobody-here", "busybox", "true"), "unable to find user nobody-here"),
    (("--cap-add", "NOT_A_CAP", "busybox", "true"), "unknown capability"),
    (("--name", "bad/name", "busybox", "true"), "invalid container name"),
    (("-v", "/etc/hostname:/bin", "busybox", "true"), "sandbox"),  # a file onto a directory: the sandbox refuses
])
def test_bad_input_is_one_line_exit_125_and_leaves_nothing(ik: Run, root: Path, args: tuple[str, ...], message: str) -> None:
    result = ik("run", "--rm", *args)
    assert result.returncode == 125
    line = one_line_error(result) if "no-such-image" not in args[0] else result.stderr.strip().splitlines()[-1]
    assert message in line
    nothing_left(root)


def test_name_taken(ik: Run) -> None:
    container_id = ok(ik("run", "--name", "twin", "busybox", "true"))
    result = ik("run", "--name", "twin", "busybox", "true")
    assert result.returncode == 125
    assert 'the container name "/twin" is already in use' in one_line_error(result)
    assert container_id == "" and len(ok(ik("ps", "-aq")).split()) == 1


def test_unknown_containers(ik: Run) -> None:
    for command in (("stop", "ghost"), ("kill", "ghost"), ("rm", "ghost"), ("logs", "ghost"), ("container", "inspect", "ghost"), ("start", "ghost")):
        assert one_line_error(ik(*command)) == "imagekit: no such container: ghost"
