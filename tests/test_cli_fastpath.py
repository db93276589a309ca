"""The click-free run path (imagekit.cli.fastpath) and click parse the same options tables: for any argv the fast
path either declines (None: click runs) or gives exactly the params click gives the group's and run's callbacks.
Checked differentially, with click's own parse as the oracle (make_context: parsed, never invoked)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagekit.cli import GLOBAL_OPTIONS
from imagekit.cli.fastpath import COMPLETE_VAR, parse
from imagekit.cli.group import cli
from imagekit.cli.optionspec import OptionSpec
from imagekit.cli.runner import RUN_OPTIONS

Parsed = tuple[dict[str, object], dict[str, object]]


def click_parse(argv: list[str]) -> Parsed | None:
    """The group's and run's params as click parses argv, or None where click would not run `run` with params
    (a usage error, --help or --version, another command)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            with cli.make_context("imagekit", list(argv)) as ctx:
                args = [*ctx._protected_args, *ctx.args]  # as Group.invoke takes them
                if not args:
                    return None  # "Missing command."
                name, command, rest = cli.resolve_command(ctx, args)
                if name != "run" or command is None:
                    return None
                with command.make_context(name, rest, parent=ctx) as sub:
                    return ctx.params, sub.params
    except (click.ClickException, click.exceptions.Exit):
        return None


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Values for --root: a directory, a file (click refuses it), a path that does not exist, and empty."""
    base = tmp_path_factory.mktemp("fastpath")
    (base / "file").write_text("")
    return {"dir": str(base), "file": str(base / "file"), "absent": str(base / "absent"), "empty": ""}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with these variables set (an empty value included), restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


#: Values an option may get: plain, dashed (an option's look), with `=`, empty, numbers, the --network choices.
VALUES = ["x", "K=V", "-x", "--rm", "=v", "", "0", "12", "-3", " 7", "1_0", "ab", "bridge", "NONE", "true", "/data"]


def values(spec: OptionSpec) -> st.SearchStrategy[str]:
    """Mostly what the option takes (a choice, a number), sometimes anything."""
    if spec.choices:
        return st.sampled_from([*spec.choices, *spec.choices, *VALUES])
    if spec.type == "int":
        return st.sampled_from(["0", "12", "-3", " 7", "1_0", "+4", *VALUES])
    return st.sampled_from(VALUES)


def spellings(spec: OptionSpec, value: str) -> list[list[str]]:
    """Every way to write the option with this value: `--opt value`, `--opt=value`, `-o value`, `-ovalue`."""
    if spec.is_flag:
        return [[flag] for flag in spec.flags]
    ways: list[list[str]] = []
    for flag in spec.flags:
        if flag.startswith("--"):
            ways += [[flag, value], [f"{flag}={value}"]]
        else:
            ways += [[flag, value], [f"{flag}{value}"]]
    return ways


@st.composite
def option_args(draw: st.DrawFn, specs: tuple[OptionSpec, ...], extra: list[list[str]]) -> list[str]:
    """Options of the table in any order, repeated, some short ones clustered (`-it`, `-dieK=V`), and now
    and then one the table does not have."""
    args: list[str] = []
    shorts = [spec for spec in specs if any(len(flag) == 2 for flag in spec.flags)]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["one", "one", "one", "cluster", "cluster", "extra"]))
        if kind == "one":
            spec = draw(st.sampled_from(specs))
            args += draw(st.sampled_from(spellings(spec, draw(values(spec)))))
        elif kind == "cluster" and shorts:
            chosen = draw(st.lists(st.sampled_from(shorts), min_size=1, max_size=4))
            letters = "".join(next(flag[1] for flag in spec.flags if len(flag) == 2) for spec in chosen)
            args.append("-" + letters + draw(st.sampled_from(["", "K=V", "=x"])))
            if not chosen[-1].is_flag and draw(st.booleans()):
                args.append(draw(values(chosen[-1])))
        else:
            args += draw(st.sampled_from(extra))
    return args


@st.composite
def argvs(draw: st.DrawFn, paths: dict[str, str]) -> list[str]:
    """`[GLOBAL OPTIONS] run [OPTIONS] [--] IMAGE [COMMAND]...`, mostly well-formed, sometimes not."""
    roots = [["--root", path] for path in paths.values()] + [[f"--root={path}"] for path in paths.values()]
    global_extra = [*roots, *roots, ["--tls-verify=false"], ["--tls-verify"], ["--certs-dir", paths["dir"]],
                    ["-h"], ["--version"], ["--bogus"], ["--debug=1"]]
    run_extra = [["--bogus"], ["-x"], ["--rm=1"], ["-h"], ["--help"], ["--network"], ["-e"], ["--pids-limit", "x"],
                 ["--network", "bad"]]
    argv = draw(option_args(GLOBAL_OPTIONS, global_extra))
    argv += draw(st.sampled_from([["run"], ["run"], ["run"], ["images"], ["--", "run"], []]))
    argv += draw(option_args(RUN_OPTIONS, run_extra))
    argv += draw(st.sampled_from([[], [], ["--"]]))
    argv += draw(st.sampled_from([["busybox"], ["busybox"], ["-"], ["-image"], []]))
    argv += draw(st.lists(st.sampled_from(["-l", "--help", "-it", "--rm", "--", "ls", "K=V", "-"]), max_size=4))
    return argv


ENVIRONMENTS = st.sampled_from([{}, {"IMAGEKIT_ROOT": "/tmp/from-env"}, {"IMAGEKIT_ROOT": ""},
                                {"IMAGEKIT_INSECURE_REGISTRIES": "a:1 b:2"}, {"IMAGEKIT_CERTS_D": "/nonexistent"},
                                {COMPLETE_VAR: "bash_complete"}])


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_path_declines_or_agrees_with_click(paths: dict[str, str], data: st.DataObject) -> None:
    argv = data.draw(argvs(paths))
    env = data.draw(ENVIRONMENTS)
    with environment(env):
        fast = parse(argv)
        slow = click_parse(argv) if COMPLETE_VAR not in env else None  # click would complete, not run
    assert fast is None or fast == slow, (argv, fast, slow)


@pytest.mark.parametrize("argv", [
    ["run", "--rm", "--network", "none", "busybox", "true"],
    ["--root", "/nonexistent/r", "--debug", "run", "-it", "--rm", "-eK=V", "-e", "A", "--network=host", "busybox", "ls", "-l"],
    ["run", "-dit", "--name=web", "-v", "/a:/b:ro", "-p8080:80", "--pids-limit", "12", "busybox"],
    ["run", "-ie=K", "--entrypoint", "", "--", "-image-", "--help"],
    ["--", "run", "busybox", "sh", "-c", "echo -h"],
])
def test_the_fast_path_takes_the_common_runs(argv: list[str]) -> None:
    """Whatever the differential test allows, these (docker's usual spellings) must not be left to click."""
    fast = parse(argv)
    assert fast is not None
    assert fast == click_parse(argv)


@pytest.mark.parametrize("argv", [
    ["run", "--help"], ["run", "-h"], ["run", "-ih", "busybox"], ["--help", "run", "busybox"], ["--version"],
    ["images"], ["run"], ["run", "--network", "bogus", "busybox"], ["run", "--pids-limit", "many", "busybox"],
    ["run", "--tty=yes", "busybox"], ["run", "-e"], ["--tls-verify=false", "run", "busybox"],
])
def test_the_fast_path_leaves_help_and_errors_to_click(argv: list[str]) -> None:
    assert parse(argv) is None


def test_run_help_is_click_s_and_lists_every_option() -> None:
    """`imagekit run --help` still comes from click, built from RUN_OPTIONS: every spelling and help text."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shown = subprocess.run([sys.executable, "-m", "imagekit", "run", "--help"], capture_output=True, text=True, env=env, check=True)
    assert shown.stdout.startswith("Usage: imagekit run [OPTIONS] IMAGE [COMMAND]...\n")
    text = " ".join(shown.stdout.split())
    for spec in RUN_OPTIONS:
        assert ", ".join(spec.flags) in text
        assert " ".join(spec.help.split()) in text
