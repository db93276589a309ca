"""Errors and warnings of the builderfile package: every failure names its line.

Owns the exception hierarchy of `builderfile` (stdlib only, never imports imagekit). Warnings are
plain values, not exceptions, because BuildKit keeps parsing after them.
"""

from __future__ import annotations

from dataclasses import dataclass


def _printable(text: str) -> str:
    """Escapes what would break or garble one terminal line (CR, tabs, U+2028, invalid bytes)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class BuilderfileError(Exception):
    """A Builderfile problem at a 1-based line (0 when no line applies); `str()` is the bare message."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def located(self, filename: str) -> str:
        """The one-line form used on stderr: `FILE:LINE: message`, unprintable characters escaped."""
        return _printable(f"{filename}:{max(self.line, 1)}: {self.message}")


class ParseError(BuilderfileError):
    """The text is not Dockerfile syntax (BuildKit's parser rejects it too)."""


class InstructionError(BuilderfileError):
    """The syntax is fine but an instruction is wrong: bad arguments, unknown flag, unknown stage."""


class ExpansionError(BuilderfileError):
    """Variable expansion failed: bad substitution, unterminated quote, `${VAR?message}`."""


class IgnoreFileError(BuilderfileError):
    """A .dockerignore pattern is malformed (Go's filepath.Match would reject it)."""


@dataclass(frozen=True, slots=True)
class Warning:  # noqa: A001 - the domain word; shadowing the builtin inside this package is intended
    """Something BuildKit accepts but flags (e.g. an empty continuation line), with its line."""

    message: str
    line: int
    url: str = ""
