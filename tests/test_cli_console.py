"""The `imagekit` command ends its process without the interpreter's teardown (imagekit.cli.console): the status
is sys.exit's and what the command wrote arrives whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagekit.cli import _exit_status

IMAGEKIT = str(Path(sys.executable).with_name("imagekit"))


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), (125, 125), (256, 0), (-1, 255), (True, 1)])
def test_exit_status_follows_sys_exit(code: object, status: int) -> None:
    assert _exit_status(code) == status


def test_a_message_given_to_sys_exit_is_printed_and_is_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_status("imagekit: gone") == 1
    assert capsys.readouterr().err == "imagekit: gone\n"


@pytest.mark.parametrize("command", [[IMAGEKIT], [sys.executable, "-m", "imagekit"]])
def test_output_and_status_survive_the_quick_exit(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "IMAGEKIT_ROOT": str(tmp_path / "store")}
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "Commands:" in shown.stdout and shown.stdout.endswith("\n")  # flushed before the end
    missing = subprocess.run([*command, "inspect", "nothing-here"], capture_output=True, text=True, env=env)
    assert (missing.returncode, missing.stdout.strip(), missing.stderr.strip()) == (1, "[]", "imagekit: no such object: nothing-here")



def test_what_a_command_left_in_the_buffers_is_flushed() -> None:
    """stdout to a pipe is block-buffered: whatever a command printed without flushing is written before the end."""
    script = "import sys, imagekit.cli as cli; cli.main = lambda: (print('out', end=''), print('err', end='', file=sys.stderr), sys.exit(7)); cli.console()"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert (ended.returncode, ended.stdout, ended.stderr) == (7, "out", "err")
