"""The syntactic layer against BuildKit's own parser test data, plus the behaviours it leaves out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builderfile.__main__ import main
from builderfile.errors import ParseError
from builderfile.syntax import contract, parse
from tests.builderfile.conftest import BUILDKIT, FIXTURES, ROOT

TESTFILES = sorted(p.name for p in (BUILDKIT / "parser" / "testfiles").iterdir()) if BUILDKIT else []
NEGATIVE = {
    "empty_dockerfile": "file with no instructions",
    "only_comments": "file with no instructions",
    "env_no_value": "ENV must have two arguments",
    "shykes-nested-json": "when using JSON array syntax, arrays must be comprised of strings only",
}


@pytest.mark.parametrize("case", TESTFILES or ["(conformance data absent)"])
def test_buildkit_testfiles_dump_identically(buildkit: Path, case: str) -> None:
    folder = buildkit / "parser" / "testfiles" / case
    assert parse(folder.joinpath("Dockerfile").read_bytes()).dump() == folder.joinpath("result").read_text("utf-8")


def test_all_33_buildkit_testfiles_are_present(buildkit: Path) -> None:
    assert len(TESTFILES) == 33


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_buildkit_negative_cases_fail_with_buildkits_message(buildkit: Path, case: str) -> None:
    data = (buildkit / "parser" / "testfiles-negative" / case / "Dockerfile").read_bytes()
    with pytest.raises(ParseError) as caught:
        parse(data)
    # BuildKit's message first, then what to do about it.
    assert caught.value.message.startswith(NEGATIVE[case] + ": ")


def test_line_numbers_match_buildkit(buildkit: Path) -> None:
    doc = parse((buildkit / "parser" / "testfile-line" / "Dockerfile").read_bytes())
    assert [(n.start_line, n.end_line) for n in doc.nodes] == [(5, 5), (11, 12), (17, 31)]


GOLDEN = sorted(p.name for p in FIXTURES.iterdir() if (p / "result").exists()) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("case", GOLDEN)
def test_golden_fixtures(case: str) -> None:
    """Cases BuildKit's testfiles lack (HEAD-only behaviour), with dumps written from BuildKit's rules."""
    folder = FIXTURES / case
    assert parse(folder.joinpath("Builderfile").read_bytes()).dump() == folder.joinpath("result").read_text("utf-8")


def test_bom_crlf_and_case_insensitive_keywords() -> None:
    doc = parse(b"\xef\xbb\xbffrom alpine\r\nrun echo a \\\r\n  b\r\n")
    assert doc.dump() == '(from "alpine")\n(run "echo a   b")\n'
    assert [n.cmd for n in doc.nodes] == ["from", "run"]


def test_escape_directive_switches_continuation_and_only_leads() -> None:
    doc = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  d\n")
    assert doc.escape == "`" and doc.dump() == '(from "a")\n(run "dir c:\\\\   d")\n'
    late = parse("FROM a\n# escape=`\nRUN a `\n")
    assert late.escape == "\\" and late.directives == {}


def test_directives_syntax_check_and_duplicates() -> None:
    doc = parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n")
    assert doc.directives == {"syntax": "docker/dockerfile:1", "check": "skip=all"}
    with pytest.raises(ParseError, match="only one escape parser directive can be used") as caught:
        parse("# escape=\\\n# escape=`\nFROM a\n")
    assert caught.value.line == 2
    with pytest.raises(ParseError, match="invalid escape token"):
        parse("# escape=x\nFROM a\n")


def test_comments_and_blank_lines_inside_continuations_warn_on_blank() -> None:
    doc = parse("RUN a \\\n# note\n\n  b\nFROM c\n")
    assert doc.nodes[0].args == ("a   b",) and (doc.nodes[0].start_line, doc.nodes[0].end_line) == (1, 4)
    assert [w.message for w in doc.warnings] == ["Empty continuation line found in: RUN a   b"]


def test_json_form_and_fallbacks() -> None:
    doc = parse('CMD ["a", "b"]\nCMD ["a" "b"]\nCMD ["a"] x\nCOPY ["x y", "/d"]\nCMD [NaN]\nCMD [1e400]\nCMD []\n')
    assert [(n.json, n.args) for n in doc.nodes] == [
        (True, ("a", "b")),
        (False, ('["a" "b"]',)),
        (False, ('["a"] x',)),  # text after the array: shell form since BuildKit v0.15
        (True, ("x y", "/d")),
        (False, ("[NaN]",)),
        (False, ("[1e400]",)),  # Go cannot hold the number: invalid JSON, so shell form
        (True, ()),
    ]
    with pytest.raises(ParseError, match="comprised of strings only"):
        parse('RUN ["a", 1]\n')


def test_heredocs_in_order_with_chomp_quotes_fd_and_space() -> None:
    doc = parse("COPY <<X <<-'Y' /dest\nY\nX\n\tbody\n\tY\nRUN 3<< EOF cat\n$x\nEOF\nRUN <<\"A\"b\n1\nAb\n")
    copy, run, quoted = doc.nodes
    assert [(h.name, h.content, h.chomp, h.expand) for h in copy.heredocs] == [("X", "Y\n", False, True), ("Y", "\tbody\n", True, False)]
    assert (copy.start_line, copy.end_line) == (1, 5)
    assert [(h.name, h.file_descriptor, h.content) for h in run.heredocs] == [("EOF", 3, "$x\n")]
    assert quoted.heredocs[0].name == "Ab" and not quoted.heredocs[0].expand
    with pytest.raises(ParseError, match="unterminated heredoc") as caught:
        parse("FROM a\nRUN <<EOF\nno end\n")
    assert caught.value.line == 2


def test_heredocs_only_for_run_copy_add_and_not_in_json_form() -> None:
    doc = parse('CMD <<EOF\nRUN ["<<EOF"]\nONBUILD RUN <<E\nhi\nE\n')
    assert [n.heredocs for n in doc.nodes[:2]] == [(), ()]
    assert doc.nodes[2].heredocs[0].content == "hi\n" and doc.dump().endswith('(onbuild (run "<<E"))\n')


def test_flags_quotes_and_double_dash() -> None:
    doc = parse('COPY --chown="a b" --from=x -- --y /d\nRUN --mount=type=cache,target=/c make --jobs=2\n')
    assert doc.nodes[0].flags == ("--chown=a b", "--from=x") and doc.nodes[0].args == ("--y", "/d")
    assert doc.nodes[1].flags == ("--mount=type=cache,target=/c",) and doc.nodes[1].args == ("make --jobs=2",)


def test_semantic_mistakes_still_parse() -> None:
    doc = parse("FROM\nFROBNICATE x y\nCOPY --nope a\nENV\n")
    assert doc.dump() == '(from)\n(frobnicate "")\n(copy ["--nope"] "a")\n(env)\n'


def test_contract_matches_the_documented_fields() -> None:
    out = contract(parse("FROM a AS b\nONBUILD COPY --from=b x y\nRUN <<E\nhi\nE\n"))
    first, onbuild, run = out["instructions"]
    assert first == {
        "cmd": "FROM", "sub_cmd": None, "json": False, "flags": [], "sub_flags": [], "value": ["a", "AS", "b"],
        "start_line": 1, "end_line": 1, "original": "FROM a AS b", "heredocs": [],
    }
    assert (onbuild["sub_cmd"], onbuild["sub_flags"], onbuild["value"]) == ("COPY", ["--from=b"], ["x", "y"])
    assert run["heredocs"] == [{"name": "E", "file_descriptor": 0, "content": "hi\n"}]


def test_cli_parse_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "Builderfile"
    path.write_text("FROM busybox\nCMD [\"sh\"]\n")
    env_root = str(ROOT)
    by_file = subprocess.run([sys.executable, "-m", "builderfile", "parse", str(path)], capture_output=True, text=True, cwd=env_root, check=True)
    by_stdin = subprocess.run([sys.executable, "-m", "builderfile", "parse", "-"], input=path.read_text(), capture_output=True, text=True, cwd=env_root, check=True)
    assert json.loads(by_file.stdout) == json.loads(by_stdin.stdout)
    assert json.loads(by_file.stdout)["instructions"][1]["json"] is True


def test_cli_parse_error_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "Builderfile"
    path.write_text("FROM a\n\nRUN [\"a\", 2]\n")
    done = subprocess.run([sys.executable, "-m", "builderfile", "parse", str(path)], capture_output=True, text=True, cwd=str(ROOT))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"{path}:3: when using JSON array syntax, arrays must be comprised of strings only: "
        '2 in ["a", 2] is not a string (quote it, or use the shell form)\n'
    )


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err and "Traceback" not in err


LINES = st.lists(
    st.one_of(
        st.sampled_from(["FROM a", "RUN x \\", "# c", "", "  ", "\\", "ENV a=1 b", "COPY <<E /d", "E", "RUN <<-E", "\tE",
                         "ONBUILD", "CMD [\"a\", 1]", "ENV x", "# escape=`", "`", "LABEL \"a b\"=c", "HEALTHCHECK"]),
        st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=30),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=LINES, ending=st.sampled_from(["\n", "\r\n"]), raw=st.binary(max_size=40))
def test_fuzz_only_parse_errors_and_the_cli_never_tracebacks(lines: list[str], ending: str, raw: bytes, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    for data in (ending.join(lines).encode("utf-8", "surrogatepass"), raw):
        try:
            doc = parse(data)
        except ParseError as err:
            assert err.line >= 0 and "\n" not in err.message
        else:
            json.dumps(contract(doc))
            doc.dump()
    path = tmp_path_factory.mktemp("fuzz") / "Builderfile"
    path.write_bytes(raw)
    status = main(["parse", str(path)])
    captured = capsys.readouterr()
    assert status in (0, 1) and "Traceback" not in captured.err
    if status:
        assert captured.err.startswith(f"{path}:") and captured.err.count("\n") == 1


_FLAGGY = st.text(st.sampled_from(list("-- ab=\t\"'\\`,/\x85é") + ["\u00a0"]), max_size=25)


@settings(max_examples=400, deadline=None)
@given(line=_FLAGGY, escape=st.sampled_from(["\\", "`"]))
def test_fast_paths_agree_with_the_byte_exact_paths(line: str, escape: str) -> None:
    from builderfile.arguments import _parse_words_slow, parse_words
    from builderfile.syntax import _Parser

    parser = _Parser("")
    parser.escape = escape
    simple = parser._simple_flags("--" + line)
    if simple is not None:
        assert simple == parser._byte_flags("--" + line)
    assert parse_words(line, escape) == _parse_words_slow(line, escape)


@pytest.mark.parametrize(
    "text",
    ["ONBUILD " * 5000 + "RUN x\n", "FROM a\nRUN " + "${a:-" * 5000 + "<<EOF\n", "FROM a\nCMD " + "[" * 50000 + "\n",
     "FROM a\nWORKDIR " + "${a:-" * 5000 + "x" + "}" * 5000 + "\n"],
    ids=["onbuild-chain", "nested-substitution", "deep-json", "deep-expansion"],
)
def test_pathological_nesting_never_exhausts_the_stack(text: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "Builderfile"
    path.write_text(text)
    for command in ("parse", "check"):
        assert main([command, str(path)]) in (0, 1)
        assert "Traceback" not in capsys.readouterr().err
