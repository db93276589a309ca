"""The sandboxed process: status, PID 1, hostname, identity, environment, working directory, exec failures."""

from __future__ import annotations

import fcntl
import io
import os
import signal
import struct
import termios
import threading
from pathlib import Path

import pytest

from imagekit.errors import SandboxError
from imagekit.sandbox import run
from tests.sandbox.conftest import ENV, Box


def test_exit_status_is_the_process_s(box: Box) -> None:
    assert box.sh("exit 3")[0] == 3
    assert box.sh("true")[0] == 0


def test_started_gets_the_running_process_and_a_killed_process_is_128_plus_the_signal(box: Box) -> None:
    """`started(pid)` names the sandboxed process (a runner kills and inspects it by that pid): SIGKILL to it
    ends the run with the shell's status for a killed process, 137."""
    pids: list[int] = []

    def started(pid: int) -> None:
        pids.append(pid)
        os.kill(pid, signal.SIGKILL)

    result = run(box.spec("sleep 2"), stdout=io.BytesIO(), started=started)  # not killed: status 0, after 2 s, not 100
    assert result.status == 128 + signal.SIGKILL
    assert len(pids) == 1 and pids[0] != os.getpid() and not Path(f"/proc/{pids[0]}").exists()


def test_the_process_is_pid_1_and_sees_only_its_namespace(box: Box) -> None:
    status, out, _ = box.sh("echo pid=$$; sleep 30 & ps -o pid,args; kill $!")
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == "pid=1"
    pids = [int(line.split()[0]) for line in lines[2:]]
    assert 1 in pids and all(pid < 10 for pid in pids) and os.getpid() not in pids, out


def test_hostname_is_set_in_its_own_uts_namespace(box: Box) -> None:
    host = os.uname().nodename
    assert box.sh("hostname", hostname="sandboxed")[1] == "sandboxed\n"
    assert box.sh("hostname")[1] == f"{host}\n"
    assert os.uname().nodename == host


def test_env_is_exactly_the_spec_s(box: Box) -> None:
    env = ("PATH=/bin", "A=1", "B=two words", "EMPTY=")
    status, out, _ = box.sh("", argv=("env",), env=env)
    assert status == 0 and out.splitlines() == list(env)


def test_path_search_uses_the_container_s_path_and_docker_s_default(box: Box) -> None:
    assert box.sh("", argv=("echo", "found"), env=("PATH=/nowhere:/bin",))[1] == "found\n"
    assert box.sh("", argv=("echo", "default"), env=())[1] == "default\n"  # /bin is in the default PATH
    assert box.sh("", argv=("/bin/echo", "absolute"), env=())[1] == "absolute\n"


def test_missing_command_is_127_and_not_executable_126(box: Box) -> None:
    status, out, _ = box.sh("", argv=("no-such-tool", "x"))
    assert (status, out) == (127, "exec: no-such-tool: not found\n")
    (Path(box.rootfs.upper) / "script").write_text("#!/bin/sh\necho hi\n")
    status, out, _ = box.sh("", argv=("/script",))
    assert (status, out) == (126, "exec: /script: permission denied\n")


def test_working_directory_is_created_and_entered(box: Box) -> None:
    status, out, result = box.sh("pwd", cwd="/work/deep/dir")
    assert (status, out) == (0, "/work/deep/dir\n")
    assert (box.upper / "work/deep/dir").is_dir()
    assert "/work" not in result.created  # WORKDIR is the image's, not a mount stub


@pytest.mark.parametrize(("uid", "gid", "groups", "expected"), [(0, 0, (), "uid=0 gid=0"), (1000, 1001, (5, 27), "uid=1000 gid=1001 groups=5,27")])
def test_uid_gid_and_groups_are_applied(box: Box, uid: int, gid: int, groups: tuple[int, ...], expected: str) -> None:
    status, out, _ = box.sh("id", uid=uid, gid=gid, groups=groups)
    assert status == 0 and out.strip() == expected


def test_umask_and_no_new_privs(box: Box) -> None:
    status, out, _ = box.sh("umask; grep NoNewPrivs /proc/self/status")
    assert status == 0 and out.split() == ["0022", "NoNewPrivs:", "1"]


def test_only_stdio_is_inherited(box: Box) -> None:
    leaked = os.open("/dev/null", os.O_RDONLY)  # inheritable: the sandbox must still close it
    os.set_inheritable(leaked, True)
    try:
        status, out, _ = box.sh("ls /proc/self/fd")
    finally:
        os.close(leaked)
    assert status == 0 and sorted(out.split()) == ["0", "1", "2", "3"]  # 3: the ls's own directory fd


def test_bad_spec_raises_one_line(box: Box) -> None:
    with pytest.raises(SandboxError, match="no command"):
        run(box.spec("", argv=()))
    with pytest.raises(SandboxError, match="isolation 'none' is not supported"):
        run(box.spec("true", isolation="none"))
    with pytest.raises(SandboxError, match="not an absolute path"):
        run(box.spec("true", cwd="rel"))
    for ids in ({"uid": -1}, {"gid": 2**32 - 1}, {"groups": (5, 2**40)}):
        with pytest.raises(SandboxError, match="is not a valid user or group id"):
            run(box.spec("true", **ids))


def test_setup_failure_is_a_one_line_sandbox_error(box: Box, tmp_path: Path) -> None:
    broken = box.spec("true", rootfs=box.rootfs.__class__(lowers=(str(tmp_path / "missing"),), upper=box.rootfs.upper, work=box.rootfs.work))
    with pytest.raises(SandboxError) as info:
        run(broken)
    message = str(info.value)
    assert message.startswith("sandbox: ") and "\n" not in message and "missing" in message and "No such file" in message
    assert ENV  # the helpers' environment is untouched by a failed run


def test_capabilities_are_bounded_to_the_spec_s(box: Box) -> None:
    from imagekit.sandbox.linux import CAPABILITIES
    from imagekit.sandbox.spec import DEFAULT_CAPABILITIES

    expected = sum(1 << CAPABILITIES[name] for name in DEFAULT_CAPABILITIES)
    status, out, _ = box.sh("grep -E '^Cap(Inh|Eff|Bnd|Amb)' /proc/self/status; mknod /dev/sda b 8 0; mkdir /m; mount -t tmpfs none /m")
    caps = dict(line.split(":\t") for line in out.splitlines() if line.startswith("Cap"))
    assert {key: int(value, 16) for key, value in caps.items()} == {"CapInh": 0, "CapEff": expected, "CapBnd": expected, "CapAmb": 0}
    assert "mknod: /dev/sda: Operation not permitted" in out and "mount: permission denied" in out and status != 0
    status, out, _ = box.sh("mkdir /m2 && mount -t tmpfs none /m2 && echo mounted", capabilities=tuple(CAPABILITIES))
    assert (status, out) == (0, "mounted\n")
    with pytest.raises(SandboxError, match="unknown capability 'CAP_CHOWN'"):
        run(box.spec("true", capabilities=("CAP_CHOWN",)))


def test_tty_is_a_pty_of_the_sandboxs_devpts_relayed_to_the_callers_streams(box: Box) -> None:
    out = io.BytesIO()
    # The relay writes the input as soon as the pty is there: the bound only ends a run whose input never comes.
    script = "busybox tty; read -t 2 line; echo got $line; echo err >&2; echo console > /dev/console; ls /proc/self/fd; exit 6"
    result = run(box.spec(script, tty=True), stdin=io.BytesIO(b"typed\n"), stdout=out, stderr=io.BytesIO(b"never written"))
    assert result.status == 6
    lines = out.getvalue().split(b"\r\n")  # the pty's echo of the input may come before or after the first line
    assert {b"/dev/pts/0", b"typed", b"got typed", b"err", b"console"} <= set(lines)  # /dev/console is the pty too, as runc binds it
    assert lines[-2:] == [b"0  1  2  3", b""]  # the pty as stdio and ls's own directory fd: nothing else inherited


def test_tty_setup_failure_is_a_one_line_sandbox_error(box: Box, tmp_path: Path) -> None:
    broken = box.spec("true", tty=True, rootfs=box.rootfs.__class__(lowers=(str(tmp_path / "missing"),), upper=box.rootfs.upper, work=box.rootfs.work))
    with pytest.raises(SandboxError, match="missing"):
        run(broken)


def test_a_tty_run_off_the_main_thread_takes_the_terminals_size(box: Box) -> None:
    """Only the main thread may handle SIGWINCH: from another thread the pty still gets the caller's window size,
    once, and the run does not fail for the handler it cannot install."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        out = io.BytesIO()
        results: list[object] = []
        worker = threading.Thread(target=lambda: results.append(run(box.spec("stty size", tty=True), stdout=out, size_from=slave)))
        worker.start()
        worker.join(60)
        assert [getattr(result, "status", result) for result in results] == [0]
        assert out.getvalue().split(b"\r\n")[0] == b"33 111"
    finally:
        os.close(master)
        os.close(slave)
