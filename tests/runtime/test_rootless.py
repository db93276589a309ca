"""`imagekit run` by a user without root: the real CLI runs as uid 1000 (setuid in the child, no capabilities left)
with its own store under $XDG_DATA_HOME, extracted by that user. Containers get a user namespace mapping the user to
root, no cgroup, and the host's network unless --network none; the bridge and resource limits are refused early.

The child gets a private mount namespace before it drops root, where directories the user may not enter (a Python
under a 0700 /root, pytest's 0700 temporary directories) are made enterable: a tmpfs over the closed directory with
just the one entry on the way bound back onto it. Nothing outside that namespace changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagekit.registry.options import DOCKER_HUB_API_ENV
from imagekit.sandbox import linux
from tests.builder.conftest import CLOSED_PORT
from tests.runtime.conftest import IMAGEKIT, ok, one_line_error, wait_for

UID = GID = 1000
_MS_BIND = 0x1000


def _enterable(path: Path) -> None:
    """Makes every directory above `path` enterable by others, in this (private) mount namespace only."""
    for depth in range(1, len(path.parts)):
        closed, entry = Path(*path.parts[:depth]), path.parts[depth]
        if os.stat(closed).st_mode & 0o001:
            continue
        keep = os.open(closed / entry, os.O_PATH | os.O_CLOEXEC)
        try:
            linux.mount("tmpfs", str(closed), "tmpfs", 0, "mode=755")
            (closed / entry).mkdir()
            linux.mount(f"/proc/self/fd/{keep}", str(closed / entry), None, _MS_BIND | linux.MS_REC)
        finally:
            os.close(keep)


def _become_user(home: Path) -> None:
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    _enterable(Path(sys.base_prefix).resolve())
    _enterable(home)
    os.setgroups([])
    os.setgid(GID)
    os.setuid(UID)


@pytest.fixture
def home(tmp_path: Path, runtime_tar: Path) -> Path:
    """The user's home, holding its store (busybox:latest imported by the user) under $XDG_DATA_HOME."""
    home = tmp_path / "home"
    (home / "shared").mkdir(parents=True)
    shutil.copy(runtime_tar, home / "busybox.tar")
    for path in (home, home / "shared", home / "busybox.tar"):
        os.chown(path, UID, GID)
    ok(user(home, "import", "-c", 'CMD ["sh"]', str(home / "busybox.tar"), "busybox:latest"))
    yield home
    leftover = user(home, "ps", "-aq", "--no-trunc").stdout.split()
    if leftover:
        user(home, "rm", "-f", *leftover)


def user(home: Path, *args: str, argv: tuple[str, ...] = (IMAGEKIT,)) -> subprocess.CompletedProcess[str]:
    """The real CLI (or another `argv`) as uid 1000 with HOME=`home`: its store is the default one,
    `home`/data/imagekit."""
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), DOCKER_HUB_API_ENV: CLOSED_PORT,
                "PYTHONPATH": os.pathsep.join(sys.path)})
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=60, cwd="/",
                          preexec_fn=lambda: _become_user(home))


def _leftovers(home: Path) -> list[str]:
    """What containers left in the user's store: snapshots and records (the containers' lock file aside)."""
    store = home / "data" / "imagekit"
    return [p.name for d in (store / "snapshots", store / "containers") if d.is_dir() for p in d.iterdir() if p.name != "lock"]


def test_a_user_is_root_inside_and_itself_outside(home: Path) -> None:
    result = user(home, "run", "--rm", "--network", "none", "-v", f"{home / 'shared'}:/shared", "busybox",
                  "sh", "-c", "id; echo from-inside > /shared/made")
    assert ok(result).startswith("uid=0(root) gid=0(root)")
    made = home / "shared" / "made"
    assert made.read_text() == "from-inside\n"
    assert (os.stat(made).st_uid, os.stat(made).st_gid) == (UID, GID)
    assert _leftovers(home) == []


def test_a_detached_container_of_a_user_is_listed_logged_entered_and_removed(home: Path) -> None:
    ok(user(home, "run", "-d", "--network", "none", "--name", "bg", "busybox", "sh", "-c", "echo hello; exec sleep 60"))
    assert "bg" in ok(user(home, "ps"))
    wait_for(lambda: user(home, "logs", "bg").stdout == "hello\n")
    pid = ok(user(home, "inspect", "-f", "{{.State.Pid}}", "bg")).strip()
    owners = [line.split()[1:] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(("Uid:", "Gid:"))]
    assert owners == [[str(UID)] * 4, [str(GID)] * 4]  # the host sees the user, not root
    assert ok(user(home, "exec", "bg", "id", "-u")) == "0\n"
    ok(user(home, "rm", "-f", "bg"))
    assert ok(user(home, "ps", "-aq")) == ""
    assert not Path(f"/proc/{pid}").exists()
    assert _leftovers(home) == []


def test_a_user_gets_an_overlay_with_its_own_markers(home: Path) -> None:
    """The rootfs is an overlay mounted with userxattr: a lower directory replaced (an opaque directory in the
    upper) works, and the change stays in the container's snapshot."""
    ok(user(home, "run", "--name", "ov", "--network", "none", "busybox", "sh", "-c", "rm -rf /data && mkdir /data && echo new > /data/x"))
    snapshot = home / "data" / "imagekit" / "snapshots"
    [upper] = [p / "upper" for p in snapshot.iterdir() if (p / "work").is_dir()]
    assert (upper / "data" / "x").read_text() == "new\n"
    assert os.getxattr(upper / "data", "user.overlay.opaque") == b"y"
    ok(user(home, "rm", "ov"))


def test_a_user_shares_the_host_network_by_default_with_a_note(home: Path) -> None:
    result = user(home, "run", "--rm", "busybox", "readlink", "/proc/self/ns/net")
    assert ok(result).strip() == os.readlink("/proc/self/ns/net")
    assert result.stderr.startswith("imagekit: note: without root there is no bridge network")
    isolated = user(home, "run", "--rm", "--network", "none", "busybox", "readlink", "/proc/self/ns/net")
    assert ok(isolated).strip() != os.readlink("/proc/self/ns/net") and isolated.stderr == ""


def test_the_python_api_of_a_user_defaults_to_the_host_network_too(home: Path) -> None:
    script = ("import imagekit\n"
              "handle = imagekit.run('busybox', ['readlink', '/proc/self/ns/net'])\n"
              "assert handle.wait() == 0\n"
              "print(handle.logs().decode().strip())\n"
              "handle.remove()\n")
    assert ok(user(home, "-c", script, argv=(sys.executable,))).strip() == os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize(("flags", "named"), [
    (("--network", "bridge"), "--network bridge"),
    (("--network", "none", "--memory", "64m"), "--memory"),
    (("--network", "none", "--cpus", "1"), "--cpus"),
    (("--network", "none", "--pids-limit", "10"), "--pids-limit"),
    (("--network", "none", "-u", "1000"), "--user 1000"),
])
def test_what_needs_root_fails_early_naming_the_option(home: Path, flags: tuple[str, ...], named: str) -> None:
    result = user(home, "run", "--rm", *flags, "busybox", "true")
    assert result.returncode == 125
    assert named in one_line_error(result)
    assert _leftovers(home) == []
