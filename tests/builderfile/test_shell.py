"""The shell lexer against BuildKit's envVarTest and wordsTest tables, plus the modifiers they leave out."""

from __future__ import annotations

from pathlib import Path

import pytest

from builderfile.errors import ExpansionError
from builderfile.shell import Lex
from tests.builderfile.conftest import BUILDKIT

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def env_var_cases() -> list[tuple[str, str]]:
    """(input, expected) for every A and U line; W lines are Windows-only (case-insensitive keys)."""
    if BUILDKIT is None:
        return []
    cases = []
    for line in (BUILDKIT / "shell" / "envVarTest").read_text("utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("|")
        assert len(fields) == 3, line
        platform, source, expected = (field.strip() for field in fields)
        if platform in ("A", "U"):
            cases.append((source, expected))
    return cases


def words_cases() -> list[tuple[dict[str, str], str, list[str]]]:
    """(environment so far, input, expected words); `ENV k=v` lines extend the environment."""
    if BUILDKIT is None:
        return []
    env: dict[str, str] = {}
    cases = []
    for line in (BUILDKIT / "shell" / "wordsTest").read_text("utf-8").splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            key, _, value = line[4:].lstrip(" ").partition("=")
            env[key] = value
            continue
        source, expected = line.split("|")
        cases.append((dict(env), source.strip(), expected.lstrip(" ").split(",")))
    return cases


ENV_VAR_CASES = env_var_cases()
WORDS_CASES = words_cases()


def test_tables_are_complete(buildkit: Path) -> None:
    assert len(ENV_VAR_CASES) == 228 and len(WORDS_CASES) == 24


@pytest.mark.parametrize(("source", "expected"), ENV_VAR_CASES or [("", "")])
def test_env_var_table(buildkit: Path, source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            Lex().process_word(source, ENV)
    else:
        assert Lex().process_word(source, ENV) == expected


@pytest.mark.parametrize(("env", "source", "expected"), WORDS_CASES or [({}, "", [])])
def test_words_table(buildkit: Path, env: dict[str, str], source: str, expected: list[str]) -> None:
    if expected == ["error"]:
        with pytest.raises(ExpansionError):
            Lex().process_words(source, env)
    else:
        assert Lex().process_words(source, env) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${V#*/}", "b/c.tar.gz"),
        ("${V##*/}", "c.tar.gz"),
        ("${V%.*}", "a/b/c.tar"),
        ("${V%%.*}", "a/b/c"),
        ("${V/b/X}", "a/X/c.tar.gz"),
        ("${V//./_}", "a/b/c_tar_gz"),
        ("${V/#a/Z}", "a/b/c.tar.gz"),  # no anchors in BuildKit's patterns: '#' is literal
        ("${V#\\*}", "a/b/c.tar.gz"),
        ("${U-dflt}${E-x}|${U+set}${E+y}", "dflt|y"),
        ("${E:-x}${E:+y}", "x"),
    ],
)
def test_pattern_modifiers(source: str, expected: str) -> None:
    assert Lex().process_word(source, {"V": "a/b/c.tar.gz", "E": ""}) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("${V:#x}", "unsupported modifier (:#) in substitution"),
        ("${V?}", "V: is not allowed to be unset"),
        ("${V?custom}", "V: custom"),
        ("${V#\\a}", "invalid escape '\\a'"),
        ("${V:-x", "syntax error: missing '}'"),
    ],
)
def test_errors_name_the_problem(source: str, message: str) -> None:
    with pytest.raises(ExpansionError) as caught:
        Lex().process_word(source, {})
    assert message in caught.value.message and caught.value.message.startswith("failed to process")


def test_backtick_escape_and_raw_modes() -> None:
    assert Lex("`").process_word("a`$b\\c", {"b": "x"}) == "a$b\\c"
    assert Lex(raw_quotes=True, raw_escapes=True, skip_unset_env=True).process_words("<<'E' \\x $u ${u:-a}", {}) == ["<<'E'", "\\x", "$u", "${u:-a}"]
    assert Lex(skip_process_quotes=True).process_word("'$A' \"$A\"", {"A": "1"}) == "'1' \"1\""
