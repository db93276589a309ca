"""imagekit.users: runc's GetExecUser rules for USER/-u, BuildKit's for --chown, read safely from an image root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagekit.errors import UnknownUser
from imagekit.users import read_in_root, resolve_owner, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1001:App:/home/app:/bin/sh
broken line
"""
GROUP = """root:x:0:
wheel:x:10:app,root
app:x:1001:
docker:x:999:app
staff:x:50:
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "passwd").write_text(PASSWD)
    (base / "etc" / "group").write_text(GROUP)
    return base


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", (0, 0, (0,))),
        ("root", (0, 0, (0, 10))),
        ("app", (1000, 1001, (1001, 10, 999))),  # the primary gid first, as docker's processes have it
        ("1000", (1000, 1001, (1001, 10, 999))),  # a listed uid is that entry: its gid and groups
        ("4242", (4242, 0, (0,))),  # an unlisted uid: gid 0, no groups
        ("app:staff", (1000, 50, (50,))),  # an explicit group: no supplementary groups
        ("app:77", (1000, 77, (77,))),
        ("4242:4343", (4242, 4343, (4343,))),
        ("daemon", (1, 1, (1,))),
    ],
)
def test_resolve_user(root: Path, spec: str, expected: tuple[int, int, tuple[int, ...]]) -> None:
    assert resolve_user(root, spec) == expected


def test_numeric_user_needs_no_passwd(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "123:456") == (123, 456, (456,))
    assert resolve_user(tmp_path, "123") == (123, 0, (0,))
    assert resolve_owner(tmp_path, "123") == (123, 123)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nobody", "unable to find user nobody: no matching entries in passwd file"),
        ("app:nogroup", "unable to find group nogroup: no matching entries in group file"),
        ("-1", "uids and gids must be in range 0-2147483647"),
        ("1:2147483648", "uids and gids must be in range 0-2147483647"),
    ],
)
def test_resolve_user_errors(root: Path, spec: str, message: str) -> None:
    with pytest.raises(UnknownUser, match=message):
        resolve_user(root, spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app", (1000, 1001)),  # a name brings its primary gid
        ("1000", (1000, 1000)),  # a number is uid and gid (BuildKit), even when listed
        ("app:staff", (1000, 50)),
        ("app:7", (1000, 7)),
        ("5:app", (5, 1001)),
        ("0:0", (0, 0)),
    ],
)
def test_resolve_owner(root: Path, spec: str, expected: tuple[int, int]) -> None:
    assert resolve_owner(root, spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ghost", "unable to find user ghost"),
        ("app:ghosts", "unable to find group ghosts"),
        ("a:b:c", "invalid chown string format: a:b:c"),
    ],
)
def test_resolve_owner_errors(root: Path, spec: str, message: str) -> None:
    with pytest.raises(UnknownUser, match=message):
        resolve_owner(root, spec)


def test_symlinked_etc_resolves_inside_the_root(tmp_path: Path) -> None:
    """`etc -> /../../../host/etc` means ROOT/host/etc; the host's own /etc/passwd is never read."""
    host = tmp_path / "host" / "etc"
    host.mkdir(parents=True)
    (host / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "root"
    (root / "host" / "etc").mkdir(parents=True)
    (root / "host" / "etc" / "passwd").write_text("inside:x:7:8::/:/bin/sh\n")
    os.symlink("/../../../host/etc", root / "etc")
    assert resolve_user(root, "inside") == (7, 8, (8,))
    with pytest.raises(UnknownUser):
        resolve_user(root, "evil")
    with pytest.raises(UnknownUser):
        resolve_user(root, "root")  # the host's /etc/passwd has root; the image's does not


def test_relative_symlink_and_loops(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "pw").write_text("rel:x:3:4::/:/bin/sh\n")
    os.symlink("../data/pw", root / "etc" / "passwd")
    os.symlink("group", root / "etc" / "group")  # a loop: no group file
    assert resolve_owner(root, "rel") == (3, 4)
    assert read_in_root(root, "etc/group") is None
    assert read_in_root(root, "etc/missing") is None


def test_hostile_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Junk lines are skipped, a FIFO is never opened for reading, a huge file is refused."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_bytes(b"\x00\xff:x:y:z\n::::\nok:x:5:6::/:/bin/sh\n" + b"a" * 1000 + b"\n")
    os.mkfifo(root / "etc" / "group")
    assert resolve_user(root, "ok") == (5, 6, (6,))
    monkeypatch.setattr("imagekit.users.MAX_FILE_BYTES", 100)
    with pytest.raises(UnknownUser, match="larger than"):
        resolve_user(root, "ok")
