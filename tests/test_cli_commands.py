"""The CLI loads command modules lazily (COMMAND_MODULES): every command must be in that map, under the
module that defines it, or it would vanish from `imagekit` without an error."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import imagekit.cli
from imagekit.cli.group import COMMAND_MODULES, cli


def test_every_command_is_mapped_to_the_module_that_defines_it() -> None:
    for module in pkgutil.iter_modules(imagekit.cli.__path__):
        importlib.import_module(f"imagekit.cli.{module.name}")
    defined = {name: command.callback.__module__ for name, command in cli.commands.items() if command.callback}
    assert defined == {name: f"imagekit.cli.{module}" for name, module in COMMAND_MODULES.items()}


def test_help_lists_every_command_and_a_command_runs_without_the_others_loaded() -> None:
    imagekit = str(Path(sys.executable).with_name("imagekit"))
    env = {**os.environ, "IMAGEKIT_ROOT": "/nonexistent/imagekit-test-root"}
    listing = subprocess.run([imagekit, "--help"], capture_output=True, text=True, check=True, env=env).stdout
    commands = listing[listing.index("Commands:") :].split()
    assert set(COMMAND_MODULES) <= set(commands)
    commands = sorted({f"imagekit.cli.{module}" for module in COMMAND_MODULES.values()})
    probe = f"import sys; from imagekit.cli import main; main(['images']); print(sorted(set({commands}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.stdout.splitlines()[-1] == "['imagekit.cli.store']", done.stdout + done.stderr
