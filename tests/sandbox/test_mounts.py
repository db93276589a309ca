"""The container's filesystem: overlay root, /proc /dev /sys, etc files, binds and tmpfs, hostile symlinks."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from imagekit.errors import SandboxError
from imagekit.sandbox import Mount, run
from imagekit.values import replace
from tests.sandbox.conftest import Box, make_box


def test_writes_land_in_upper_and_lowers_stay_untouched(tmp_path: Path, busybox: Path) -> None:
    top = tmp_path / "top"
    (top / "data").mkdir(parents=True)
    (top / "data" / "keep").write_text("lower\n")
    (top / "data" / "gone").write_text("lower\n")
    box = make_box(tmp_path / "box", top, busybox)
    status, out, _ = box.sh("cat /data/keep; echo upper > /data/keep; echo new > /data/new; rm /data/gone; ls /data")
    assert status == 0 and out == "lower\nkeep\nnew\n"
    assert (top / "data" / "keep").read_text() == "lower\n" and (top / "data" / "gone").exists()
    assert (box.upper / "data" / "keep").read_text() == "upper\n" and (box.upper / "data" / "new").read_text() == "new\n"
    whiteout = os.lstat(box.upper / "data" / "gone")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0


def test_one_hundred_twenty_lowers_mount(tmp_path: Path, busybox: Path) -> None:
    lowers = []
    for index in range(120):
        layer = tmp_path / "layers" / f"layer-with-a-long-name-{index:03d}-{'x' * 40}"
        (layer / "layers").mkdir(parents=True)
        (layer / "layers" / f"{index:03d}").write_text(f"{index}\n")
        (layer / "top").write_text(f"{index}\n")
        lowers.append(layer)
    assert len(":".join(map(str, lowers))) > 4096  # beyond what one page of mount options holds
    box = make_box(tmp_path / "box", *lowers, busybox)
    status, out, _ = box.sh("ls /layers | wc -l; cat /top")
    assert status == 0 and out.split() == ["120", "0"]  # topmost first


def test_without_lowers_the_upper_directory_is_the_root(tmp_path: Path, busybox: Path) -> None:
    import shutil

    shutil.copytree(busybox, tmp_path / "root", symlinks=True)
    box = Box(tmp_path, replace(make_box(tmp_path / "unused").rootfs, lowers=(), upper=str(tmp_path / "root"), work=""))
    status, out, _ = box.sh("echo made > /made; cat /made")
    assert (status, out) == (0, "made\n")
    assert (tmp_path / "root" / "made").read_text() == "made\n"


def test_readonly_root_refuses_writes_but_keeps_dev_and_shm_writable(box: Box) -> None:
    status, out, _ = box.sh("echo x > /dev/null && echo x > /dev/shm/f && echo ok; touch /nope", rootfs=replace(box.rootfs, readonly=True))
    assert status == 1 and out.startswith("ok\n") and "Read-only file system" in out
    assert not (box.upper / "nope").exists()


def test_proc_is_fresh_and_masked(box: Box) -> None:
    status, out, _ = box.sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; grep ' /proc ' /proc/self/mountinfo; cat /proc/keys | wc -c; echo 1 > /proc/sys/kernel/ns_last_pid")
    lines = out.splitlines()
    assert lines[0].startswith("sh -c cat /proc/1/cmdline")
    assert " - proc " in lines[1] and "nosuid,nodev,noexec" in lines[1]
    assert lines[2].strip() == "0"
    assert "Read-only file system" in out and status != 0


def test_dev_has_the_standard_nodes_and_links(box: Box) -> None:
    script = "for n in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$n; done; echo x > /dev/null; head -c 3 /dev/zero | wc -c; ls -l /dev | grep -- '->' | sed 's/.* \\([a-z]*\\) -> /\\1 /'; grep -E ' /dev(/pts|/shm)? ' /proc/self/mountinfo"
    status, out, _ = box.sh(script)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[:6] == ["/dev/null character special file 1:3", "/dev/zero character special file 1:5", "/dev/full character special file 1:7", "/dev/random character special file 1:8", "/dev/urandom character special file 1:9", "/dev/tty character special file 5:0"]
    assert lines[6].strip() == "3"
    assert sorted(lines[7:12]) == ["fd /proc/self/fd", "ptmx pts/ptmx", "stderr /proc/self/fd/2", "stdin /proc/self/fd/0", "stdout /proc/self/fd/1"]
    mounts = "\n".join(lines[12:])
    assert "/dev rw,nosuid" in mounts and "mode=755" in mounts
    assert "- devpts" in mounts and "ptmxmode=666" in mounts and "mode=620" in mounts
    assert "/dev/shm rw,nosuid,nodev,noexec" in mounts


@pytest.mark.parametrize("network", ["none", "host"])
def test_sys_is_read_only(box: Box, network: str) -> None:
    status, out, _ = box.sh("grep ' /sys ' /proc/self/mountinfo; touch /sys/x", network=network)
    assert status == 1 and " /sys ro," in out and "Read-only file system" in out


def test_network_none_has_only_loopback_up(box: Box) -> None:
    status, out, _ = box.sh("ip -o link; ip -o addr", network="none")
    assert status == 0, out
    links = [line.split(":")[1].strip() for line in out.splitlines() if ": <" in line]
    assert links == ["lo"] and "UP" in out and "127.0.0.1/8" in out


def test_host_network_sees_the_host_interfaces(box: Box) -> None:
    status, out, _ = box.sh("ls /sys/class/net")
    assert status == 0 and sorted(out.split()) == sorted(name for _, name in socket.if_nameindex())


def test_etc_files_are_bound_read_only_and_stubs_reported(box: Box, tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.1\n")
    status, out, result = box.sh("cat /etc/resolv.conf; echo x >> /etc/resolv.conf", etc_files=((str(resolv), "/etc/resolv.conf"),))
    assert out.startswith("nameserver 192.0.2.1\n") and "Read-only file system" in out and status == 1
    assert resolv.read_text() == "nameserver 192.0.2.1\n"
    assert result.created == ("/proc", "/dev", "/sys", "/etc/resolv.conf")  # the lower has /etc, not the rest
    assert (box.upper / "etc" / "resolv.conf").read_bytes() == b""  # the stub the builder removes


def test_bind_mounts_ro_and_rw_and_tmpfs_in_order(box: Box, tmp_path: Path) -> None:
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "f").write_text("ro\n")
    mounts = (
        Mount("/mnt/ro", source=str(ro), options=("ro",)),
        Mount("/mnt/rw", source=str(rw)),
        Mount("/mnt/rw/tmp", type="tmpfs", options=("size=1m", "mode=1777", "nosuid")),
    )
    script = "cat /mnt/ro/f; echo x > /mnt/ro/g; echo w > /mnt/rw/w; echo t > /mnt/rw/tmp/t; stat -c %a /mnt/rw/tmp; grep /mnt/rw/tmp /proc/self/mountinfo"
    status, out, result = box.sh(script, mounts=mounts)
    assert out.startswith("ro\n") and "Read-only file system" in out and "1777\n" in out and "size=1024k" in out, out
    assert (rw / "w").read_text() == "w\n" and not (ro / "g").exists()
    assert (rw / "tmp").is_dir() and os.listdir(rw / "tmp") == []  # the tmpfs' mount point, in the bound dir
    assert result.created == ("/proc", "/dev", "/sys", "/mnt", "/mnt/ro", "/mnt/rw")  # not /mnt/rw/tmp: it is on the bind
    assert status == 0


def test_file_bind_over_a_missing_target_creates_a_file_stub(box: Box, tmp_path: Path) -> None:
    source = tmp_path / "secret"
    source.write_text("s3cret\n")
    status, out, result = box.sh("cat /run/secrets/token", mounts=(Mount("/run/secrets/token", source=str(source), options=("ro",)),))
    assert (status, out) == (0, "s3cret\n")
    assert result.created[-3:] == ("/run", "/run/secrets", "/run/secrets/token")
    assert (box.upper / "run" / "secrets" / "token").is_file()


def test_symlinks_in_the_image_never_lead_to_the_host(tmp_path: Path, busybox: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "etc").symlink_to(str(host))  # absolute: means ROOT/<host path> inside the container
    (hostile / "mnt").symlink_to("../../../../../../../../../..")
    box = make_box(tmp_path / "box", hostile, busybox)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.1\n")
    status, out, result = box.sh(
        "cat /etc/resolv.conf; ls /mnt/x",
        etc_files=((str(resolv), "/etc/resolv.conf"),),
        mounts=(Mount("/mnt/x/y", type="tmpfs"),),
    )
    assert status == 0 and out == "nameserver 192.0.2.1\ny\n", out
    assert os.listdir(host) == [] and not Path("/x").exists()
    inside = box.upper / str(host).lstrip("/")
    assert (inside / "resolv.conf").is_file() and (box.upper / "x" / "y").is_dir()
    assert result.created[3:] == (*(str(p) for p in reversed(host.parents) if p != Path("/")), str(host), f"{host}/resolv.conf", "/x", "/x/y")


def test_bad_mounts_are_sandbox_errors(box: Box, tmp_path: Path) -> None:
    cases = [
        (Mount("/m", source=str(tmp_path / "missing")), "bind source"),
        (Mount("/m", type="nfs"), "unsupported mount type 'nfs'"),
        (Mount("m", type="tmpfs"), "not an absolute path"),
        (Mount("/m", type="tmpfs", options=("bogus=1",)), "bogus"),
    ]
    for mount, message in cases:
        with pytest.raises(SandboxError, match=message) as info:
            run(box.spec("true", mounts=(mount,)))
        assert "\n" not in str(info.value)


def test_an_overlay_the_kernel_refuses_names_the_rootfs(box: Box) -> None:
    bad = replace(box.rootfs, work=box.rootfs.lowers[0])  # workdir inside a lower: overlayfs refuses
    with pytest.raises(SandboxError, match=r"^sandbox: mounting the overlay of 1 lowers and upper .*/upper: ") as info:
        run(box.spec("true", rootfs=bad))
    assert "\n" not in str(info.value)
