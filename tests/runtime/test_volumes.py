"""Volumes: binds (read-only refuses writes), named volumes shared and surviving containers, anonymous
volumes for -v DST and the image's VOLUME, --mount, and the `volume` commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

from imagekit.runtime.volumes import copy_up

from tests.runtime.conftest import Run, inspect, ok, one_line_error


def test_named_volume_survives_and_is_shared(ik: Run, root: Path) -> None:
    ok(ik("run", "--rm", "-v", "shared:/vol", "busybox", "sh", "-c", "echo first > /vol/note"))
    assert (root / "volumes" / "shared" / "_data" / "note").read_text() == "first\n"
    assert ok(ik("run", "--rm", "-v", "shared:/other:ro", "busybox", "cat", "/other/note")) == "first\n"
    assert ok(ik("volume", "ls", "-q")).split() == ["shared"]
    info = json.loads(ok(ik("volume", "inspect", "shared")))[0]
    assert info["Name"] == "shared" and info["Mountpoint"] == str(root / "volumes" / "shared" / "_data")


def test_bind_mounts_and_read_only(ik: Run, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = ok(ik("run", "--rm", "-v", f"{host}:/mnt", "busybox", "sh", "-c", "cat /mnt/in; echo back > /mnt/out"))
    assert out == "from host\n" and (host / "out").read_text() == "back\n"
    refused = ik("run", "--rm", "-v", f"{host}:/mnt:ro", "busybox", "sh", "-c", "echo x > /mnt/new")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert not (host / "new").exists()
    via_mount = ok(ik("run", "--rm", "--mount", f"type=bind,source={host},target=/m,readonly", "busybox", "sh", "-c",
                      "cat /m/in; touch /m/x 2>/dev/null || echo refused"))
    assert via_mount == "from host\nrefused\n"


def test_anonymous_volumes_image_volume_and_rm_v(ik: Run, root: Path) -> None:
    ok(ik("run", "--name", "anon", "-v", "/scratch", "withvol", "sh", "-c", "echo a > /scratch/f; echo b > /data/g"))
    names = ok(ik("volume", "ls", "-q")).split()
    assert len(names) == 2 and all(len(name) == 64 for name in names)  # -v /scratch and the image's VOLUME /data
    assert sorted(p.read_text() for name in names for p in (root / "volumes" / name / "_data").iterdir()) == ["a\n", "b\n", "from the image\n"]
    assert "in use" in one_line_error(ik("volume", "rm", names[0]))
    ok(ik("rm", "-v", "anon"))
    assert ok(ik("volume", "ls", "-q")) == ""


def test_volume_commands_and_prune(ik: Run) -> None:
    assert ok(ik("volume", "create", "keep")).strip() == "keep"
    ok(ik("run", "--name", "holder", "-v", "/anon", "busybox", "true"))
    ok(ik("rm", "holder"))  # without -v its anonymous volume stays, unused
    assert len(ok(ik("volume", "ls", "-q")).split()) == 2
    pruned = ok(ik("volume", "prune", "-f"))
    assert "Total reclaimed volumes: 1" in pruned
    assert ok(ik("volume", "ls", "-q")).split() == ["keep"]  # named volumes stay without --all
    ok(ik("volume", "rm", "keep"))
    assert "no such volume" in one_line_error(ik("volume", "rm", "keep"))
    assert "invalid volume name" in one_line_error(ik("volume", "create", "../escape"))


def test_mount_tmpfs_and_inspect_mounts(ik: Run) -> None:
    out = ok(ik("run", "--name", "t", "--mount", "type=tmpfs,target=/t,tmpfs-size=2m", "busybox", "sh", "-c",
                "grep ' /t ' /proc/mounts"))
    assert out.split()[2] == "tmpfs" and "size=2048k" in out
    assert inspect(ik, "t")["Mounts"] == [{"Type": "tmpfs", "Source": "", "Destination": "/t", "RW": True}]


def test_a_fresh_volume_gets_the_images_content(ik: Run, root: Path) -> None:
    out = ok(ik("run", "--rm", "-v", "seeded:/data", "busybox", "sh", "-c", "cat /data/seed; stat -c '%u:%g %a' /data/seed"))
    assert out.splitlines() == ["from the image", "0:0 644"]
    (root / "volumes" / "seeded" / "_data" / "seed").write_text("changed\n")
    assert ok(ik("run", "--rm", "-v", "seeded:/data", "busybox", "cat", "/data/seed")) == "changed\n"  # not empty: kept
    assert ok(ik("run", "--rm", "withvol", "cat", "/data/seed")) == "from the image\n"  # VOLUME /data, anonymous
    assert ok(ik("run", "--rm", "-v", "other:/nothing/here", "busybox", "ls", "-A", "/nothing/here")) == ""


def test_copy_up_skips_fifos_and_stays_in_the_root(tmp_path: Path) -> None:
    image = tmp_path / "root"
    (image / "data" / "sub").mkdir(parents=True)
    (image / "data" / "sub" / "file").write_text("x")
    os.mkfifo(image / "data" / "pipe")
    (image / "data" / "link").symlink_to("/etc/passwd")
    (image / "escape").symlink_to("/etc")
    volume = tmp_path / "volume"
    volume.mkdir()
    copy_up(str(image), "/data", str(volume))
    assert sorted(p.name for p in volume.iterdir()) == ["link", "sub"]  # no FIFO: it would have blocked the copy
    assert os.readlink(volume / "link") == "/etc/passwd" and (volume / "sub" / "file").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    copy_up(str(image), "/escape", str(empty))  # /etc through a symlink out of the root: nothing copied
    assert list(empty.iterdir()) == []
