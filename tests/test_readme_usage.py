"""The README's usage lines and the commands' --help agree.

A synopsis line (indented `    imagekit ...` in the README) must name every option of its command
(one name each) and nothing else, and its positional arguments exactly as `--help` shows them; an
example line (in a ```sh block) may use only commands and options that exist. The global --help must
name the environment variables and defaults the README gives for the same options.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from imagekit.cli.group import cli
from imagekit.registry.tls import DEFAULT_CERTS_DIRS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SYNOPSES = re.findall(r"^    (imagekit .*?)(?:\s+# .*)?$", README, re.M)
EXAMPLES = [
    line.split("imagekit ", 1)[1]
    for block in re.findall(r"```sh\n(.*?)```", README, re.S)
    for line in block.splitlines()
    if "imagekit " in line.split("#")[0]
]
_OPTION = re.compile(r"\[(-[-\w]+)(?:[ =](?:[^\[\]]|\[[^\]]*\])*)?\](?:\.\.\.)?")  # values may hold [...]
_WORD = re.compile(r"[a-z][a-z-]*")


def _command(words: list[str]) -> tuple[click.Command, list[str], click.Context]:
    """The click command a word path names (`images`, `image ls`, `manifest inspect`) and the rest."""
    command: click.Command = cli
    ctx = click.Context(cli, info_name="imagekit")
    while words and isinstance(command, click.Group) and _WORD.fullmatch(words[0]):
        found = command.get_command(ctx, words[0])
        if found is None:
            break
        command = found
        ctx = click.Context(command, parent=ctx, info_name=words[0])
        words = words[1:]
    return command, words, ctx


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name not in ("help",)]


@pytest.mark.parametrize("line", SYNOPSES)
def test_synopsis_matches_help(line: str) -> None:
    words = line.split()[1:]
    global_part = words[: next(i for i, w in enumerate(words) if _WORD.fullmatch(w) or w == "COMMAND")]
    command, rest, ctx = _command(words[len(global_part) :])
    text = " ".join(rest)
    named = _OPTION.findall(text)
    if command is cli:
        named = _OPTION.findall(" ".join(global_part))
    options = _options(command)
    owners = {name: option for option in options for name in option.opts + option.secondary_opts}
    assert set(named) <= set(owners), f"{line}: {sorted(set(named) - set(owners))} not in --help"
    assert sorted(o.name for o in {id(owners[n]): owners[n] for n in named}.values()) == sorted(o.name for o in options if o.name), line
    assert len(named) == len({owners[n].name for n in named}), f"{line}: an option named twice"
    if command is cli:
        return
    positionals = _OPTION.sub("", text).split()
    if isinstance(command, click.Group):
        assert positionals == ["COMMAND", "..."]
        comment = README[README.index(line) :].split("\n", 1)[0]
        assert all(name in comment for name in command.list_commands(ctx)), comment
    else:
        arguments = [p.make_metavar(ctx) for p in command.params if isinstance(p, click.Argument)]
        assert positionals == arguments, f"{line}: --help shows {arguments}"


@pytest.mark.parametrize("line", EXAMPLES)
def test_example_uses_what_exists(line: str) -> None:
    words = shlex.split(line.split(" #")[0].replace("...", ""))
    takes_value = {n: not o.is_flag for o in _options(cli) for n in o.opts}
    while words and words[0].startswith("-"):  # global options and their values
        name = words.pop(0).split("=")[0]
        assert name in takes_value, f"{line}: {name} is not a global option"
        if takes_value[name] and "=" not in line.split(name, 1)[1][:1]:
            words.pop(0)
    if not words:
        return
    command, rest, _ = _command(words)
    assert command is not cli, f"{line}: no such command"
    names = {n for o in _options(command) for n in o.opts + o.secondary_opts}
    used = {w.split("=")[0] for w in rest if w.startswith("-") and w != "-"}
    assert used <= names, f"{line}: {sorted(used - names)} not in --help"


def test_global_help_names_what_the_readme_says() -> None:
    text = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    for fragment in ("IMAGEKIT_ROOT", "IMAGEKIT_REGISTRY_MIRRORS", "$IMAGEKIT_CONFIG", "$XDG_CONFIG_HOME/imagekit/config.json", "IMAGEKIT_CERTS_D"):
        assert fragment in text and fragment in README, fragment
    assert " and ".join(str(d) for d in DEFAULT_CERTS_DIRS) in text


def test_certs_dir_must_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--certs-dir", str(tmp_path / "nope"), "images"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_push_help_says_where_a_missing_dest_goes() -> None:
    text = " ".join(CliRunner().invoke(cli, ["push", "--help"]).output.split())
    assert "Without DEST" in text and "SOURCE's own name" in text
