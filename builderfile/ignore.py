""".dockerignore files with the semantics of moby's patternmatcher and BuildKit's ignorefile reader.

Owns reading the patterns (comments, BOM, `!` exceptions, cleaned paths, a leading `/` dropped),
choosing the file (`<Builderfile name>.dockerignore` beside the Builderfile wins over the context's
`.dockerignore`) and matching context-relative paths: Go `filepath.Match` syntax (`*`, `?`, `[...]`,
`\\` escapes), `**` for any number of directories, later patterns win, and a path is ignored when it
or one of its parent directories matches. Stdlib only; must not import imagekit.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from builderfile._go import GO_SPACES, go_clean
from builderfile.errors import IgnoreFileError

_SHOULD_ESCAPE = frozenset(".+()|{}$")


def read_patterns(data: bytes | str) -> list[tuple[int, str]]:
    """The (line, pattern) pairs of an ignore file, normalized exactly as BuildKit's ignorefile.ReadAll."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    if data.startswith("\ufeff"):
        data = data[1:]
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    patterns = []
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        pattern = line.strip(GO_SPACES)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = pattern[1:].strip(GO_SPACES)
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        patterns.append((number, "!" + pattern if invert else pattern))
    return patterns


@dataclass(frozen=True, slots=True)
class Pattern:
    """One compiled pattern; `kind` is exact, prefix, suffix or regexp, as patternmatcher decides."""

    text: str
    exclusion: bool
    kind: str
    regex: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


def _check_match_syntax(pattern: str) -> None:
    """Raises ValueError where Go's filepath.Match would return ErrBadPattern."""
    i, end = 0, len(pattern)
    while i < end:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= end:
                raise ValueError("trailing backslash")
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < end and pattern[i] == "^":
                i += 1
            first = True
            while True:
                if i >= end:
                    raise ValueError("unclosed [")
                if pattern[i] == "]" and not first:
                    i += 1
                    break
                first = False
                _, i = _class_char(pattern, i)
                if i < end and pattern[i] == "-":
                    _, i = _class_char(pattern, i + 1)
            continue
        i += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise ValueError("bad character class")
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            raise ValueError("trailing backslash")
        return pattern[i + 1], i + 2
    return pattern[i], i + 1


def filepath_match_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match as a regex over slash-separated paths (COPY's source wildcards, not
    .dockerignore's `**`); ValueError where Go says ErrBadPattern."""
    out, i, end = [], 0, len(pattern)
    while i < end:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i >= end:
                raise ValueError("trailing backslash")
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            negate = i < end and pattern[i] == "^"
            i += negate
            items: list[str] = []
            while True:
                if i >= end:
                    raise ValueError("unclosed [")
                if pattern[i] == "]" and items:
                    i += 1
                    break
                low, i = _class_char(pattern, i)
                if i < end and pattern[i] == "-":
                    high, i = _class_char(pattern, i + 1)
                    items.append(f"{re.escape(low)}-{re.escape(high)}")
                else:
                    items.append(re.escape(low))
            out.append("[" + ("^" if negate else "") + "".join(items) + "]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def compile_pattern(text: str) -> Pattern:
    """patternmatcher's compile: a cleaned pattern (maybe `!`-prefixed) -> Pattern; ValueError if malformed."""
    text = go_clean(text.strip(GO_SPACES))
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise ValueError('illegal exclusion pattern: "!"')
        text = text[1:]
    _check_match_syntax(text)
    out = ["^"]
    kind = "exact"
    i, end = 0, len(text)
    position = 0
    while i < end:
        ch = text[i]
        i += 1
        if ch == "*":
            if i < end and text[i] == "*":
                i += 1
                if i < end and text[i] == "/":
                    i += 1
                if i >= end:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regexp"
                else:
                    out.append("(.*/)?")
                    kind = "regexp"
                if position == 0:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _SHOULD_ESCAPE:
            out.append("\\" + ch)
        elif ch == "\\":
            # Go writes the escape into its regexp as is, so `\d` is a digit class there too.
            if i < end:
                out.append("\\" + text[i])
                i += 1
                kind = "regexp"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)  # literal in both regexp dialects (a stray ^ anchors in both, so never matches)
        position += 1
    if kind != "regexp":
        return Pattern(text, exclusion, kind)
    out.append(r"\Z")
    try:
        with warnings.catch_warnings():  # Python frets about `[[` or `--` in a class; Go just reads them
            warnings.simplefilter("ignore", FutureWarning)
            regex = re.compile("".join(out))
    except re.error as err:
        raise ValueError(str(err)) from None
    return Pattern(text, exclusion, "regexp", regex)


class Matcher:
    """Ordered patterns; `ignored(path)` answers for a slash-separated path relative to the context."""

    def __init__(self, patterns: list[str] | list[tuple[int, str]], source: str = ".dockerignore") -> None:
        self.patterns: list[Pattern] = []
        for index, item in enumerate(patterns, start=1):
            line, text = item if isinstance(item, tuple) else (index, item)
            if not text.strip(GO_SPACES):
                continue
            try:
                self.patterns.append(compile_pattern(text))
            except ValueError as err:
                raise IgnoreFileError(f"bad pattern {text!r} in {source}: {err}", line) from None

    def ignored(self, path: str) -> bool:
        """True when `path` or a parent directory matches, and no later `!` pattern takes it back.

        Like patternmatcher.MatchesOrParentMatches, the path is used as given (not cleaned).
        """
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parents = parent.split("/") if parent != "." else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                for depth in range(1, len(parents) + 1):
                    if pattern.match("/".join(parents[:depth])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched


def included(context: Path, matcher: Matcher) -> list[str]:
    """The context's paths (slash-separated, sorted, directories too) that the matcher does not ignore.

    An ignored directory is still entered when a `!` pattern might take back something inside it,
    as BuildKit's context walker does; otherwise its whole subtree is skipped unread.
    """
    exceptions = any(pattern.exclusion for pattern in matcher.patterns)
    found: list[str] = []
    for top, dirs, files in os.walk(context):
        rel_top = Path(top).relative_to(context).as_posix()
        prefix = "" if rel_top == "." else rel_top + "/"
        keep = []
        for name in sorted(dirs):
            path = prefix + name
            if not matcher.ignored(path):
                found.append(path)
                keep.append(name)
            elif exceptions:
                keep.append(name)
        dirs[:] = keep
        found.extend(prefix + name for name in files if not matcher.ignored(prefix + name))
    return sorted(found)


def ignore_file(context: Path, builderfile: Path | None = None) -> Path | None:
    """The ignore file BuildKit would use: `<builderfile>.dockerignore` beside it, else `<context>/.dockerignore`."""
    if builderfile is not None:
        beside = builderfile.with_name(builderfile.name + ".dockerignore")
        if beside.is_file():
            return beside
    default = context / ".dockerignore"
    return default if default.is_file() else None


def load_matcher(context: Path, builderfile: Path | None = None) -> Matcher:
    """The Matcher for a build context (empty when there is no ignore file); IgnoreFileError names the line."""
    path = ignore_file(context, builderfile)
    if path is None:
        return Matcher([])
    return Matcher(read_patterns(path.read_bytes()), path.name)
