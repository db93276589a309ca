"""The semantic layer: typed instructions, flags per instruction, stages, and expansion at BuildKit's moments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from builderfile.__main__ import main
from builderfile.errors import BuilderfileError, ExpansionError, InstructionError, ParseError
from builderfile._go import go_duration
from builderfile.expand import expand, stage_base
from builderfile.instructions import (
    Add, Arg, Cmd, Copy, Entrypoint, Env, Expose, From, Healthcheck, Label, Maintainer, Onbuild, Run, Shell,
    Stopsignal, User, Volume, Workdir, check, load,
)
from tests.builderfile.conftest import ROOT
from tests.builderfile.test_oracle import dockerfiles

EVERYTHING = b"""\
# syntax=docker/dockerfile:1
ARG BASE=alpine
FROM --platform=linux/amd64 $BASE AS Build
MAINTAINER someone
ENV PATH=/go/bin:$PATH LANG=C.UTF-8
LABEL a=b "c d"=e
ARG V=1 W
RUN --mount=type=cache,target=/c --network=none make
CMD ["run", "--fast"]
ENTRYPOINT ["/bin/app"]
EXPOSE 8080/tcp 443
VOLUME ["/data", "/logs"]
USER app:app
WORKDIR /src
COPY --from=deps --chown=1:1 --chmod=644 --link --exclude=*.md --exclude=*.txt a b /dst/
ADD --checksum=sha256:abc --keep-git-dir=false https://x/y.tar /y
SHELL ["/bin/bash", "-c"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl -f http://localhost/
ONBUILD COPY --from=Build a b
FROM build
"""


def test_every_instruction_gets_its_type_and_values() -> None:
    bf = load(EVERYTHING)
    assert [a.pairs for a in bf.meta_args] == [(("BASE", "alpine"),)]
    build, second = bf.stages
    assert build.start == From(3, 3, build.start.original, "$BASE", "build", "linux/amd64")
    types = [type(i) for i in build.instructions]
    assert types == [Maintainer, Env, Label, Arg, Run, Cmd, Entrypoint, Expose, Volume, User, Workdir, Copy, Add,
                     Shell, Stopsignal, Healthcheck, Onbuild]
    env, label, arg, run, cmd, entry, expose, volume = build.instructions[1:9]
    assert env.pairs == (("PATH", "/go/bin:$PATH"), ("LANG", "C.UTF-8"))
    assert label.pairs == (("a", "b"), ('"c d"', "e"))
    assert arg.pairs == (("V", "1"), ("W", None))
    assert (run.mounts, run.network, run.shell_form, run.command) == (("type=cache,target=/c",), "none", True, ("make",))
    assert (cmd.command, cmd.shell_form, entry.command) == (("run", "--fast"), False, ("/bin/app",))
    assert (expose.ports, volume.paths) == (("443", "8080/tcp"), ("/data", "/logs"))
    copy, add, shell, stop, health, onbuild = build.instructions[11:]
    assert (copy.sources, copy.dest, copy.from_, copy.chown, copy.chmod, copy.link, copy.excludes) == (
        ("a", "b"), "/dst/", "deps", "1:1", "644", True, ("*.md", "*.txt"))
    assert (add.checksum, add.keep_git_dir, add.unpack) == ("sha256:abc", False, None)
    assert shell.shell == ("/bin/bash", "-c") and stop.signal == "SIGTERM"
    assert (health.test, health.interval, health.timeout, health.retries) == (
        ("CMD-SHELL", "curl -f http://localhost/"), 90.0, 0.5, 3)
    assert isinstance(onbuild.trigger, Copy) and onbuild.trigger.from_ == "Build" and onbuild.expression == "COPY --from=Build a b"
    assert bf.stage("BUILD") is build and bf.stage(1) is second and bf.stage("1") is second
    assert stage_base(bf, second) is build and stage_base(bf, build) == "$BASE"
    with pytest.raises(KeyError, match="no build stage named 'nope'"):
        bf.stage("nope")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\nCOPY x\n", 2, "COPY needs at least two arguments: a source and a destination"),
        ("FROM a\nADD --chown=1 x\n", 2, "ADD needs at least two arguments: a source and a destination"),
        ("FROM a\nRUN --mnt=type=cache x\n", 2, "RUN does not take --mnt (did you mean --mount?); it takes --device, --mount, --network, --security"),
        ("FROM a\nCOPY --from=a --from=b x y\n", 2, "COPY has the flag --from twice; give it once"),
        ("FROM a\nCOPY --from x y\n", 2, "COPY --from needs a value: --from=VALUE"),
        ("FROM a\nCOPY --link=maybe x y\n", 2, "COPY --link expects true or false, not 'maybe'"),
        ("FROM a\nENV --x=1 a=b\n", 2, "ENV takes no flags, but got --x"),
        ("FROM\n", 1, "FROM needs a base image: FROM IMAGE [AS NAME]"),
        ("FROM a b\n", 1, "FROM takes an image and optionally AS NAME, but got 2 arguments: a b"),
        ("FROM a AS 9x\n", 1, "FROM stage name '9x' is invalid: it must start with a letter and contain only letters, digits, '-', '_' and '.'"),
        ("RUN x\nFROM a\n", 1, "RUN comes before the first FROM: only ARG may precede FROM"),
        ("FROM a\nFROBNICATE x\n", 2, "unknown instruction: FROBNICATE"),
        ("FROM a\nCOPYY a b\n", 2, "unknown instruction: COPYY (did you mean COPY?)"),
        ("FROM a\nUSER\n", 2, "USER needs exactly one argument: the user (and group)"),
        ("FROM a\nSHELL sh -c\n", 2, 'SHELL requires the JSON form, e.g. SHELL ["/bin/sh", "-c"], not: SHELL sh -c'),
        ("FROM a\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
        ("FROM a\nHEALTHCHECK CMD\n", 2, "HEALTHCHECK CMD needs a command"),
        ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "HEALTHCHECK --retries cannot be negative (-1)"),
        ("FROM a\nHEALTHCHECK --interval=1 CMD x\n", 2, "HEALTHCHECK --interval=1 is not a duration: use e.g. 30s, 1m30s, 500ms"),
        ("FROM a\nHEALTHCHECK FOO x\n", 2, "HEALTHCHECK type 'FOO' is unknown: use CMD or NONE"),
        ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "ONBUILD cannot trigger another ONBUILD"),
        ("FROM a\nONBUILD FROM b\n", 2, "ONBUILD cannot trigger FROM"),
        ("FROM a\nONBUILD COPY x\n", 2, "COPY needs at least two arguments: a source and a destination"),
        ("FROM a\nCOPY <<EOF <<OUT\nx\nEOF\nOUT\n", 2, "COPY cannot take a heredoc as its destination (<<OUT)"),
        ("FROM a\nRUN --network=bridge x\n", 2, "RUN --network=bridge is not supported: use one of default, none, host"),
        ("FROM a\nRUN --mount=type=nfs,target=/x y\n", 2, "RUN --mount type 'nfs' is not supported: use one of bind, cache, tmpfs, secret, ssh"),
        ("FROM a AS x\nCOPY --from=0 a b\n", 2, "COPY --from=0 refers to the current or a later stage; use an earlier stage's index or name"),
        ("FROM a AS x\nCOPY --from=X a b\n", 2, "COPY --from=X refers to the current or a later stage; use an earlier stage's index or name"),
        ("FROM a\nCOPY --chmod=999 a b\n", 2, "COPY --chmod=999 is not a file mode: use octal digits (0755) or symbolic modes (u+x)"),
        ("FROM a\nADD --chmod=u+q a b\n", 2, "ADD --chmod=u+q is not a file mode: use octal digits (0755) or symbolic modes (u+x)"),
        ("FROM a\nVOLUME [\"\"]\n", 2, "VOLUME paths can not be empty strings"),
        ("FROM a\nWORKDIR ${x\n", 2, "failed to process \"${x\": unsupported modifier (\ufffd) in substitution"),
    ],
)
def test_errors_name_line_and_expectation(text: str, line: int, message: str) -> None:
    problems = check(text).errors
    assert [(p.line, p.message) for p in problems] == [(line, message)]


def test_check_reports_every_error_and_load_raises_the_first() -> None:
    text = "FROM a\nCOPY x\nUSER\nEXPOSE\n"
    assert [p.line for p in check(text).errors] == [2, 3, 4]
    with pytest.raises(InstructionError) as caught:
        load(text)
    assert caught.value.line == 2
    assert [type(p) for p in check("FROM a\nRUN [\"a\", 1]\n").errors] == [ParseError]


def test_duplicate_stage_names_warn_as_buildkit_lints_them() -> None:
    report = check("FROM a AS x\nFROM b AS X\nCOPY --from=x a b\n")
    assert report.errors == ()
    assert [(w.line, w.message) for w in report.warnings] == [
        (2, "FROM stage name 'x' is already used by the stage on line 1; references to it mean that first stage")]
    assert load("FROM a AS x\nFROM b AS X\n").stage("x").start.base == "a"


def test_what_buildkit_accepts_is_accepted() -> None:
    bf = load("FROM a\nHEALTHCHECK --interval=5s NONE\nSTOPSIGNAL --x 9\nARG --y z\nRUN\nCOPY --from=img -- --a b\nUSER a b\nENTRYPOINT []\n")
    health, stop, arg, run, copy, user, entry = bf.stages[0].instructions
    assert arg.pairs == (("z", None),)
    assert health.test == ("NONE",) and stop.signal == "9" and run.command == () and user.user == "a b"
    assert copy.sources == ("--a",) and entry.command == ()


def test_heredoc_sources_become_contents_chomped_when_dashed() -> None:
    bf = load("FROM a\nCOPY <<-A <<'B' file /d/\n\t\tone\n\tA\n$two\nB\n")
    copy = bf.stages[0].instructions[0]
    assert copy.sources == ("file",) and copy.dest == "/d/"
    assert [(c.path, c.data, c.expand) for c in copy.contents] == [("A", "one\n", True), ("B", "$two\n", False)]


def test_expansion_scoping_matches_buildkit() -> None:
    text = """\
ARG IMG=alpine
ARG VER=3.19
ARG UNUSED
FROM ${IMG}:${VER} AS one
RUN echo $VER
COPY $VER /d
ARG VER
ENV A=1 B=$A
ENV A=2 C=$A
ARG A=arg
LABEL v=$VER a=$A k${A}=x
COPY --chown=${A}:0 <<EOF <<'RAW' /dst/${C}
$A "$VER"
EOF
$A
RAW
RUN --mount=type=cache,target=/c/$A make $A
WORKDIR /w/${C:-none}
USER ${NOPE:-nobody}
FROM one
COPY $VER /x
"""
    bf = expand(load(text), build_args={"VER": "edge"}, predefined={"TARGETARCH": "amd64"})
    assert [a.pairs for a in bf.meta_args] == [(("IMG", "alpine"),), (("VER", "edge"),), (("UNUSED", None),)]
    one, two = bf.stages
    assert one.start.base == "alpine:edge"
    run, copy_before, arg, env1, env2, arg_a, label, copy, run2, workdir, user = one.instructions
    assert run.command == ("echo $VER",)  # RUN's shell form is never expanded
    assert copy_before.sources == ("",)  # global ARGs are not visible inside a stage until declared
    assert arg.pairs == (("VER", "edge"),)  # ARG without default inherits the global value (or build arg)
    assert env1.pairs == (("A", "1"), ("B", ""))  # ENV takes effect on the next instruction
    assert env2.pairs == (("A", "2"), ("C", "1"))
    assert label.pairs == (("v", "edge"), ("a", "2"), ("k2", "x"))  # ENV wins over ARG of the same name
    assert copy.chown == "2:0" and copy.dest == "/dst/1"
    assert [c.data for c in copy.contents] == ['2 "edge"\n', "$A\n"]
    assert run2.mounts == ("type=cache,target=/c/2",) and run2.command == ("make $A",)
    assert workdir.path == "/w/1" and user.user == "nobody"
    assert two.instructions[0].sources == ("",)


def test_expansion_errors_carry_the_line() -> None:
    with pytest.raises(ExpansionError) as caught:
        expand(load("FROM a\nENV X=1\nWORKDIR ${Y:?must be set}\n"))
    assert caught.value.line == 3 and caught.value.message.endswith("Y: must be set")


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("1h2m3s", 3723.0), ("1.5s", 1.5), ("250ms", 0.25), ("-2s", -2.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", ".s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        go_duration(text)


def test_cli_check(tmp_path: Path) -> None:
    bad = tmp_path / "Builderfile"
    bad.write_text("FROM busybox\n\n\n\n\n\nCOPY onlyone\nUSER\n")
    done = subprocess.run([sys.executable, "-m", "builderfile", "check", str(bad)], capture_output=True, text=True, cwd=str(ROOT))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"{bad}:7: COPY needs at least two arguments: a source and a destination",
        f"{bad}:8: USER needs exactly one argument: the user (and group)",
    ]
    good = tmp_path / "ok"
    good.write_text("FROM busybox\nCOPY a b\n")
    ok = subprocess.run([sys.executable, "-m", "builderfile", "check", str(good)], capture_output=True, text=True, cwd=str(ROOT))
    assert (ok.returncode, ok.stderr) == (0, "")
    warned = tmp_path / "warned"
    warned.write_text("FROM busybox\nRUN a \\\n\n  b\n")
    done = subprocess.run([sys.executable, "-m", "builderfile", "check", str(warned)], capture_output=True, text=True, cwd=str(ROOT))
    assert (done.returncode, done.stderr) == (0, f"{warned}:4: warning: Empty continuation line found in: RUN a   b\n")


def test_chmod_octal_symbolic_or_variable_is_accepted() -> None:
    copies = load("FROM a\nARG M\nCOPY --chmod=0755 a b\nCOPY --chmod=u+x,go=rX a b\nCOPY --chmod=$M a b\n").stages[0].instructions[1:]
    assert [c.chmod for c in copies] == ["0755", "u+x,go=rX", "$M"]


def test_undeclared_arg_in_from_warns_as_buildkit_lints_it() -> None:
    report = check("ARG TAG=1\nFROM busybox:$TAG\nFROM ${NOPE} AS b\nFROM --platform=$BUILDPLATFORM a:${GONE:-x}\n")
    assert report.errors == ()
    assert [(w.line, w.message) for w in report.warnings] == [
        (3, "FROM argument 'NOPE' is not declared (UndefinedArgInFrom)"),
        (4, "FROM argument 'GONE' is not declared (UndefinedArgInFrom)"),
    ]


def _check_cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builderfile", *extra, str(path)], capture_output=True, text=True, cwd=str(ROOT))


def test_cli_check_reports_in_line_order_and_sums_up(tmp_path: Path) -> None:
    mixed = tmp_path / "Builderfile"
    mixed.write_text("FROM busybox AS a\nFROM busybox AS a\nCOPY x\nFROM $NOPE\nUSER\n")
    done = _check_cli(mixed, "check")
    assert done.returncode == 1 and done.stdout == ""
    assert [line.split(":")[1] for line in done.stderr.splitlines()] == ["2", "3", "4", "5"]
    assert "warning: FROM stage name 'a'" in done.stderr.splitlines()[0]
    good = tmp_path / "good"
    good.write_text("ARG V=1\nFROM busybox AS base\nRUN true\nFROM base\nCOPY --from=base a b\nFROM scratch\n")
    done = _check_cli(good, "check")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok: 3 stages, 6 instructions\n", "")


def test_cli_check_names_the_offset_of_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "Builderfile"
    path.write_bytes(b"FROM busybox\nRUN echo \xf5\xf5\n")
    done = _check_cli(path, "check")
    assert (done.returncode, done.stderr) == (1, f"{path}:2: not UTF-8 text: byte 0xf5 at offset 22 is invalid\n")


def test_cli_parse_pretty_indents(tmp_path: Path) -> None:
    path = tmp_path / "Builderfile"
    path.write_text("FROM busybox\n")
    flat, pretty = _check_cli(path, "parse"), _check_cli(path, "parse", "--pretty")
    assert len(flat.stdout.splitlines()) == 1 and pretty.stdout.startswith('{\n  "instructions": [')
    assert json.loads(pretty.stdout) == json.loads(flat.stdout)


def test_copy_word_that_does_not_lex_is_a_path_not_a_heredoc() -> None:
    # BuildKit's MustParseHeredoc: `<<EOF\` + an unterminated quote fails to lex, so it is no heredoc.
    copy = load('FROM a\nCOPY 0 <<EOF\\\n"').stages[0].instructions[0]
    assert (copy.sources, copy.dest, copy.contents) == (("0",), '<<EOF"', ())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=dockerfiles())
@example(text='COPY 0 <<EOF\\\n"')
def test_fuzz_semantic_layer_raises_only_located_builderfile_errors(text: str, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    problems = check(text).errors
    assert all(isinstance(p, BuilderfileError) and "\n" not in p.message for p in problems)
    try:
        expand(load(text), build_args={"A": "1"})
    except BuilderfileError as err:
        assert problems or isinstance(err, ExpansionError)
    path = tmp_path_factory.mktemp("fuzz") / "Builderfile"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    status = main(["check", str(path)])
    err = capsys.readouterr().err
    assert status == (1 if problems else 0) and "Traceback" not in err
    assert all(line.startswith(f"{path}:") and line.isprintable() for line in err.split("\n") if line)
