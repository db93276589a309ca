"""`imagekit run` in the foreground: isolation as runc sets it up, docker's process rules, exit statuses."""

from __future__ import annotations

import os
from pathlib import Path

from imagekit.runtime.process import RUN_CAPABILITIES
from imagekit.sandbox.linux import CAPABILITIES
from tests.runtime.conftest import Run, ok


def cap_mask(names: tuple[str, ...] | list[str]) -> int:
    return sum(1 << CAPABILITIES[name] for name in names)


def cap_eff(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("CapEff:"))
    return int(line.split()[1], 16)


def test_namespaces_hostname_pid1_and_host_processes_invisible(ik: Run) -> None:
    out = ok(ik("run", "--rm", "--network", "none", "--hostname", "box", "busybox", "sh", "-c",
                "hostname; echo pid=$$; ls /proc | grep -c '^[0-9]'; cat /etc/hostname; echo $HOSTNAME; ip -o link | wc -l"))
    hostname, pid, processes, etc_hostname, env_hostname, links = out.split()
    assert hostname == etc_hostname == env_hostname == "box"
    assert pid == "pid=1"
    assert int(processes) <= 3  # sh, ls, grep: not the host's hundreds
    assert links == "1"  # --network none: only lo
    default = ok(ik("run", "--rm", "--network", "none", "--name", "named", "busybox", "hostname")).strip()
    assert len(default) == 12 and all(c in "0123456789abcdef" for c in default)  # docker's default: the short ID
    assert ok(ik("run", "--rm", "--network", "host", "busybox", "hostname")).strip() == os.uname().nodename  # the host's
    bridged = ok(ik("run", "--rm", "busybox", "sh", "-c", "hostname; ip -o -4 addr show eth0")).split()
    assert len(bridged[0]) == 12 and bridged[0] != default  # the default network is the bridge: an address, the short ID
    assert bridged[4].startswith("10.88.")


def test_masked_and_readonly_proc_paths(ik: Run) -> None:
    out = ok(ik("run", "--rm", "busybox", "sh", "-c",
                "wc -c < /proc/keys; ls /proc/acpi 2>/dev/null | wc -l; echo 1 > /proc/sys/vm/drop_caches && echo wrote || echo refused"))
    keys, acpi, write = out.split()
    assert keys == "0" and acpi == "0"
    assert write == "refused"
    privileged = ok(ik("run", "--rm", "--privileged", "busybox", "sh", "-c", "wc -c < /proc/keys; grep -c ' /proc/sys ' /proc/mounts; true"))
    assert int(privileged.split()[0]) > 0 and privileged.split()[1] == "0"  # docker's --privileged: nothing masked


def test_capabilities_default_add_drop_privileged(ik: Run) -> None:
    status = "cat /proc/self/status"
    assert cap_eff(ok(ik("run", "--rm", "busybox", "sh", "-c", status))) == cap_mask(RUN_CAPABILITIES)
    assert "MKNOD" not in RUN_CAPABILITIES and {"CHOWN", "NET_RAW", "AUDIT_WRITE", "KILL"} <= set(RUN_CAPABILITIES)
    added = cap_eff(ok(ik("run", "--rm", "--cap-add", "SYS_ADMIN", "--cap-drop", "CAP_CHOWN", "busybox", "sh", "-c", status)))
    assert added == cap_mask([*(set(RUN_CAPABILITIES) - {"CHOWN"}), "SYS_ADMIN"])
    assert cap_eff(ok(ik("run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c", status))) == 0
    host_bounding = int(next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapBnd:")).split()[1], 16)
    privileged = cap_eff(ok(ik("run", "--rm", "--privileged", "busybox", "sh", "-c", status)))
    assert privileged == cap_mask(list(CAPABILITIES)) & host_bounding  # every capability this machine lets us have
    nnp = ok(ik("run", "--rm", "busybox", "sh", "-c", "grep NoNewPrivs /proc/self/status")).split()
    assert nnp == ["NoNewPrivs:", "1"]


def test_env_env_file_workdir_user(ik: Run, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=yes\nSHARED=file\n\n")
    out = ok(ik("run", "--rm", "--env-file", str(env_file), "-e", "SHARED=flag", "-e", "PATH=/bin", "-w", "/srv/app",
                "-u", "app", "busybox", "sh", "-c", "echo $FROM_FILE $SHARED $PATH; pwd; id"))
    values, cwd, ident = out.splitlines()
    assert values == "yes flag /bin"  # -e after --env-file wins; -e replaces the image's PATH
    assert cwd == "/srv/app"  # created when missing
    assert ident == "uid=1000(app) gid=1001(app) groups=1001(app),2000(extra)"
    numeric = ok(ik("run", "--rm", "-u", "4242:4343", "busybox", "id")).strip()
    assert numeric.startswith("uid=4242 gid=4343")
    env = ok(ik("run", "--rm", "busybox", "env")).splitlines()
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in env and "HOME=/root" in env  # the image's PATH; runc's HOME


def test_entrypoint_and_cmd_rules(ik: Run, root: Path, runtime_tar: Path) -> None:
    ok(ik("import", "-c", 'ENTRYPOINT ["echo", "entry"]', "-c", 'CMD ["default"]', str(runtime_tar), "ep:1"))
    assert ok(ik("run", "--rm", "ep:1")) == "entry default\n"  # Entrypoint + Cmd
    assert ok(ik("run", "--rm", "ep:1", "given", "words")) == "entry given words\n"  # arguments replace Cmd
    assert ok(ik("run", "--rm", "--entrypoint", "echo", "ep:1")) == "\n"  # --entrypoint clears Cmd
    assert ok(ik("run", "--rm", "--entrypoint", "echo", "ep:1", "x")) == "x\n"
    assert ok(ik("run", "--rm", "busybox", "echo", "plain")) == "plain\n"


def test_exit_codes(ik: Run) -> None:
    assert ik("run", "--rm", "busybox", "true").returncode == 0
    assert ik("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = ik("run", "--rm", "busybox", "no-such-command")
    assert missing.returncode == 127 and "no-such-command: not found" in missing.stderr
    assert ik("run", "--rm", "busybox", "/etc/passwd").returncode == 126
    assert ik("run", "--rm", "--init", "busybox", "sh", "-c", "kill -KILL $$").returncode == 137
    assert ik("run", "--rm", "--init", "busybox", "sh", "-c", "kill -TERM $$").returncode == 143


def test_read_only_root_and_tmpfs(ik: Run) -> None:
    out = ok(ik("run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c",
                "touch /file 2>/dev/null && echo root-writable || echo root-refused; touch /scratch/f && echo tmpfs-ok; "
                "grep ' /scratch ' /proc/mounts"))
    lines = out.splitlines()
    assert lines[:2] == ["root-refused", "tmpfs-ok"]
    assert "tmpfs" in lines[2] and "size=1024k" in lines[2] and "noexec" in lines[2]


def test_writes_stay_in_the_container(ik: Run) -> None:
    ok(ik("run", "--name", "writer", "busybox", "sh", "-c", "echo mine > /etc/marker"))
    assert ik("run", "--rm", "busybox", "cat", "/etc/marker").returncode == 1  # another container: the image's files
    ok(ik("rm", "writer"))


def test_stdin_is_passed_with_i_only(ik: Run) -> None:
    assert ok(ik("run", "--rm", "-i", "--network", "none", "busybox", "cat", input=b"piped\n")) == "piped\n"
    assert ok(ik("run", "--rm", "--network", "none", "busybox", "cat", input=b"piped\n")) == ""  # as docker's: without -i, an empty stdin
