"""Builderfile text -> syntax nodes, exactly as BuildKit's `dockerfile:1` parser builds its AST.

Owns the syntactic layer: parser directives (`# syntax=`, `# escape=`, `# check=`), comments,
line continuations (comments and blank lines inside them), CRLF and a UTF-8 BOM, JSON (exec) form
versus shell form, leading `--flags`, ONBUILD's sub-instruction, heredocs and line spans. It keeps
BuildKit's byte-level quirks on purpose (see the comments), because users bring Dockerfiles that
BuildKit accepts and expect the same meaning here. It accepts what is only wrong semantically (an
unknown instruction, a flag an instruction does not take): `builderfile.instructions` judges that.
Stdlib only; must not import imagekit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from builderfile._go import GO_SPACES, go_lower, go_quote
from builderfile.arguments import ARGUMENT_PARSERS, BYTE_SPACES, WHITESPACE
from builderfile.errors import ExpansionError, ParseError, Warning
from builderfile.shell import Lex

DEFAULT_ESCAPE = "\\"
#: BuildKit's bufio.Scanner limit: a longer physical line is an error.
MAX_LINE = 64 * 1024

# Go's RE2 `\s` is ASCII [\t\n\f\r ] (no \v), and `.` does not match a newline.
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*\Z")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_COMMANDS = frozenset({"add", "copy", "run"})
_ASCII_SPACES = "\t\n\v\f\r "
_ASCII_SPACE_RUN = re.compile(r"[\t\n\v\f\r ]*")
_PLAIN_FLAG = re.compile(r"[^\t\n\v\f\r \"'\x80-\U0010ffff]*")
_EMPTY_CONTINUATION_URL = "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"


@dataclass(frozen=True, slots=True)
class Heredoc:
    """One here-document: `content` is the raw body (tabs kept even for `<<-`, which only `chomp` records)."""

    name: str
    file_descriptor: int
    expand: bool
    chomp: bool
    content: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    """One instruction: BuildKit's Node with its `Next` chain flattened into `args`.

    `cmd` is the keyword as written; `keyword` is its lowercase form. For ONBUILD, `sub` holds the
    triggered instruction and `args` is empty. `json` is true for the exec (JSON array) form.
    """

    cmd: str
    flags: tuple[str, ...]
    args: tuple[str, ...]
    json: bool
    original: str
    start_line: int
    end_line: int
    sub: Node | None = None
    heredocs: tuple[Heredoc, ...] = ()
    comments: tuple[str, ...] = ()

    @property
    def keyword(self) -> str:
        return go_lower(self.cmd)

    def dump(self) -> str:
        """BuildKit's `Node.Dump()` for this instruction, without the surrounding parentheses."""
        heads: list[str] = []
        node: Node | None = self
        while node is not None:  # ONBUILD chains nest: (onbuild (onbuild (run "x")))
            out = node.keyword
            if node.flags:
                out += " [" + " ".join(go_quote(f) for f in node.flags) + "]"
            for arg in node.args:
                out += " " + go_quote(arg)
            heads.append(out.strip(GO_SPACES))
            node = node.sub
        return " (".join(heads) + ")" * (len(heads) - 1)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed Builderfile: its instructions in order, the escape token and the directives."""

    nodes: tuple[Node, ...]
    escape: str = DEFAULT_ESCAPE
    directives: dict[str, str] = field(default_factory=dict)
    warnings: tuple[Warning, ...] = ()

    def dump(self) -> str:
        """BuildKit's `AST.Dump() + "\\n"`: one `(instruction ...)` line each, as in the testfiles' `result`."""
        return "".join(f"({node.dump()})\n" for node in self.nodes)


def parse(text: str | bytes) -> Document:
    """Parses Builderfile text (str, or bytes read as UTF-8) into a Document; raises ParseError with a line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return _Parser(text).run()


_OTHER_LINE_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _split_lines(text: str) -> list[str]:
    # bufio.Scanner with BuildKit's scanLines: split after each \n, keep the newline.
    if _OTHER_LINE_BREAKS.search(text) is None:
        return text.splitlines(keepends=True)  # the same split, done in C
    lines = text.split("\n")
    last = lines.pop()
    lines = [line + "\n" for line in lines]
    if last:
        lines.append(last)
    return lines


class _Parser:
    """The state of one parse: BuildKit's Parse loop over physical lines."""

    def __init__(self, text: str) -> None:
        self.lines = _split_lines(text)
        self.escape = DEFAULT_ESCAPE
        self.directives: dict[str, str] = {}
        self.directives_done = False
        self.too_long = False
        if self.lines and max(map(len, self.lines)) <= MAX_LINE // 4:
            return  # even at 4 bytes a character, no line can reach the limit
        for index, line in enumerate(self.lines):
            # A longer line stops the scanner; BuildKit reports it after what came before.
            if len(line) > MAX_LINE // 4 and _utf8_len(line) > (MAX_LINE if line.endswith("\n") else MAX_LINE - 1):
                del self.lines[index:]
                self.too_long = True
                break

    def directive(self, token: str) -> bool:
        """BuildKit's DirectiveParser.ParseLine: only leading `# key=value` comments count."""
        if self.directives_done:
            return False
        if not token.startswith("#"):
            self.directives_done = True
            return False
        match = _DIRECTIVE.match(token[1:].lstrip(GO_SPACES))
        if match is None or go_lower(match.group(1)) not in _KNOWN_DIRECTIVES:
            self.directives_done = True
            return False
        key = go_lower(match.group(1))
        if key in self.directives:
            raise ParseError(f"only one {key} parser directive can be used")
        self.directives[key] = match.group(2)
        if key == "escape":
            value = match.group(2)
            if value not in ("`", "\\"):
                raise ParseError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
        return True

    def continuation(self, line: str) -> tuple[str, bool]:
        """Strips a trailing escape token (and spaces after it); True when the line continues."""
        stripped = line.rstrip(" \t")
        if stripped[-1:] != self.escape:
            return line, False
        if len(stripped) == 1:
            return "", True
        if stripped[-2] == self.escape:
            return line, False
        return stripped[:-1], True

    def run(self) -> Document:
        lines = self.lines
        total = len(lines)
        spaces = GO_SPACES
        nodes: list[Node] = []
        warnings: list[Warning] = []
        comments: list[str] = []
        index = 0
        while index < total:
            raw = lines[index]
            if index == 0 and raw[:1] == "\ufeff":
                raw = raw[1:]
            lead = raw.lstrip(spaces)
            index += 1
            if not lead or lead[0] == "#":
                token = lead.rstrip("\r\n")
                if lead:
                    comment = raw[1:].strip(spaces)
                    comments = comments + [comment] if comment else []
                if not self.directives_done:
                    try:
                        if self.directive(token):
                            comments = comments[:-1]
                    except ParseError as err:
                        raise ParseError(err.message, index) from None
                continue
            self.directives_done = True
            start = index
            escape = self.escape
            token = lead.rstrip("\r\n")
            last = token[-1]
            body, more = self.continuation(token) if last == escape or last == " " or last == "\t" else (token, False)
            if more:
                parts = [body]
                empty_continuation = False
                while more and index < total:
                    raw = lines[index]
                    index += 1
                    lead = raw.lstrip(spaces)
                    if not lead:
                        empty_continuation = True
                        continue
                    if lead[0] == "#":
                        continue
                    body, more = self.continuation(raw.rstrip("\r\n"))
                    parts.append(body)
                body = "".join(parts)
                if empty_continuation:
                    warnings.append(Warning(f"Empty continuation line found in: {body}", index, _EMPTY_CONTINUATION_URL))
            try:
                cmd, flags, args, is_json, sub = self.node(body)
                heredocs: tuple[Heredoc, ...] = ()
                if "<<" in body and _can_contain_heredoc(cmd, is_json, sub):
                    heredocs, index = self.heredocs(body, index)
            except (ParseError, ExpansionError) as err:
                raise ParseError(err.message, start) from None
            nodes.append(Node(cmd, flags, args, is_json, body, start, index, sub, heredocs, tuple(comments)))
            comments = []
        if not nodes:
            raise ParseError("file with no instructions: a Builderfile needs at least one instruction, such as FROM IMAGE", index)
        if self.too_long:
            raise ParseError(f"dockerfile line greater than max allowed size of {MAX_LINE - 1} bytes: split it with a trailing backslash", index + 1)
        return Document(tuple(nodes), self.escape, dict(self.directives), tuple(warnings))

    def heredocs(self, line: str, index: int) -> tuple[tuple[Heredoc, ...], int]:
        """Reads each heredoc body after the instruction, in the order the words name them."""
        found = []
        for heredoc in heredocs_from_line(line):
            body: list[str] = []
            while True:
                if index >= len(self.lines):
                    raise ParseError(f"unterminated heredoc: no line {heredoc.name!r} ends the heredoc <<{heredoc.name} started here")
                raw = self.lines[index]
                index += 1
                candidate = raw.rstrip("\r\n")
                if heredoc.chomp:
                    candidate = candidate.lstrip("\t")
                if candidate == heredoc.name:
                    break
                body.append(raw)
            found.append(Heredoc(heredoc.name, heredoc.file_descriptor, heredoc.expand, heredoc.chomp, "".join(body)))
        return tuple(found), index

    def node(self, line: str) -> tuple[str, tuple[str, ...], tuple[str, ...], bool, Node | None]:
        """BuildKit's newNodeFromLine: split off the keyword and flags, then the per-keyword argument parser.

        ONBUILD wraps the node its rest parses to; chains (`ONBUILD ONBUILD ...`) are unwound in a
        loop, so no input can exhaust Python's stack.
        """
        chain: list[tuple[str, tuple[str, ...], str]] = []  # the ONBUILD levels: (cmd, flags, original)
        cmd, flags, rest = self.split_command(line)
        while (cmd.lower() if cmd.isascii() else go_lower(cmd)) == "onbuild" and rest:
            chain.append((cmd, flags, line))
            line = rest
            cmd, flags, rest = self.split_command(line)
        parts = self._leaf(cmd, flags, rest)
        for outer_cmd, outer_flags, outer_line in reversed(chain):
            parts = (outer_cmd, outer_flags, (), False, Node(parts[0], parts[1], parts[2], parts[3], line, 0, 0, parts[4]))
            line = outer_line
        return parts

    def _leaf(self, cmd: str, flags: tuple[str, ...], rest: str) -> tuple[str, tuple[str, ...], tuple[str, ...], bool, Node | None]:
        keyword = cmd.lower() if cmd.isascii() else go_lower(cmd)
        if keyword == "onbuild":  # with nothing after it
            return cmd, flags, (), False, None
        parser = ARGUMENT_PARSERS.get(keyword)
        if parser is None:  # unknown instructions parse, with one empty argument node
            return cmd, flags, ("",), False, None
        result = parser(rest, self.escape)
        if result is None:
            return cmd, flags, (), False, None
        return cmd, flags, result[0], result[1], None

    def split_command(self, line: str) -> tuple[str, tuple[str, ...], str]:
        parts = WHITESPACE.split(line.strip(GO_SPACES), maxsplit=1)
        if len(parts) < 2:
            return parts[0], (), ""
        rest, flags = self.extract_flags(parts[1])
        return parts[0], flags, rest.strip(GO_SPACES)

    def extract_flags(self, line: str) -> tuple[str, tuple[str, ...]]:
        """Leading `--name[=value]` words (quotes and escapes processed) up to the first other word or `--`.

        BuildKit scans this byte by byte, so a UTF-8 byte 0x85 or 0xA0 counts as a space and each
        byte of a multi-byte character becomes its own Latin-1 character in the flag; kept as is.
        """
        if not line.startswith("--") and line[:1] not in "\t\n\v\f\r ":
            return line, ()
        simple = self._simple_flags(line)
        return simple if simple is not None else self._byte_flags(line)

    def _byte_flags(self, line: str) -> tuple[str, tuple[str, ...]]:
        """extract_flags exactly as BuildKit's byte loop runs it."""
        data = line.encode("utf-8", "surrogateescape")
        escape = ord(self.escape)
        words: list[str] = []
        word: list[str] = []
        in_word = in_quote = blank_ok = False
        quote = 0
        pos, end = 0, len(data)
        while pos <= end:
            ch = data[pos] if pos < end else -1
            if not in_word and not in_quote:
                if pos == end:
                    break
                if ch in BYTE_SPACES:
                    pos += 1
                    continue
                if ch != 0x2D or pos + 1 == end or data[pos + 1] != 0x2D:
                    return data[pos:].decode("utf-8", "surrogateescape"), tuple(words)
                in_word = True
            if pos == end:
                text = "".join(word)
                if text != "--" and (blank_ok or text):
                    words.append(text)
                break
            if in_word:
                if ch in BYTE_SPACES:
                    in_word = False
                    text = "".join(word)
                    if text == "--":
                        return data[pos:].decode("utf-8", "surrogateescape"), tuple(words)
                    if blank_ok or text:
                        words.append(text)
                    word = []
                    blank_ok = False
                    pos += 1
                    continue
                if ch in (0x22, 0x27):
                    quote, blank_ok, in_word, in_quote = ch, True, False, True
                    pos += 1
                    continue
            elif ch == quote:
                in_quote, in_word = False, True
                pos += 1
                continue
            if ch == escape:
                if pos + 1 == end:  # an escape token at the very end is dropped (and closes a quote)
                    in_quote, in_word = False, True
                    pos += 1
                    continue
                pos += 1
                ch = data[pos]
            word.append(chr(ch))
            pos += 1
        return "", tuple(words)

    def _simple_flags(self, line: str) -> tuple[str, tuple[str, ...]] | None:
        """extract_flags for the common case (ASCII, no quotes, no escape token); None otherwise."""
        words: list[str] = []
        pos, end = 0, len(line)
        escape = self.escape
        while True:
            pos = _ASCII_SPACE_RUN.match(line, pos).end()  # type: ignore[union-attr]
            if not line.startswith("--", pos):
                return line[pos:], tuple(words)
            stop = _PLAIN_FLAG.match(line, pos).end()  # type: ignore[union-attr]
            if stop < end and line[stop] not in _ASCII_SPACES:
                return None  # a quote, escape or non-ASCII character: the byte-exact path handles it
            word = line[pos:stop]
            if escape in word:
                return None
            if word == "--":
                return line[stop:], tuple(words)
            words.append(word)
            pos = stop


def _utf8_len(line: str) -> int:
    return len(line.encode("utf-8", "surrogateescape"))


def _can_contain_heredoc(cmd: str, is_json: bool, sub: Node | None) -> bool:
    if sub is not None:
        cmd, is_json = sub.cmd, sub.json
    return go_lower(cmd) in _HEREDOC_COMMANDS and not is_json


_HEREDOC_WORDS = Lex(raw_quotes=True, raw_escapes=True, skip_unset_env=True)
_HEREDOC_NAME = Lex(skip_unset_env=True)
_HEREDOC_NAME_RAW = Lex(raw_quotes=True, skip_unset_env=True)


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word like `<<EOF`, `3<<-'EOF'` or `<< EOF` opens, or None when it is not one."""
    match = _HEREDOC.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    words = _HEREDOC_NAME.process_words(rest, {})
    if len(words) != 1:
        return None
    raw = _HEREDOC_NAME_RAW.process_words(rest, {})
    if len(raw) != 1:
        raise ParseError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    # Quoting any part of the word (but not escaping a quote) turns expansion off, as in sh.
    expand = name.count("'") + name.count('"') == raw[0].count("'") + raw[0].count('"')
    return Heredoc(name, int(match.group(1) or 0), expand, match.group(2) == "-")


def must_parse_heredoc(word: str) -> Heredoc | None:
    """parse_heredoc with a word that does not lex read as no heredoc, as BuildKit's MustParseHeredoc
    (what COPY and ADD use for their sources and destination)."""
    try:
        return parse_heredoc(word)
    except ExpansionError:
        return None


def heredocs_from_line(line: str) -> list[Heredoc]:
    """Every heredoc a logical line opens, in order; a line that does not lex opens none."""
    try:
        words = _HEREDOC_WORDS.process_words(line, {})
    except ExpansionError:
        return []
    return [doc for doc in map(parse_heredoc, words) if doc is not None]


def contract(document: Document) -> dict[str, list[dict[str, object]]]:
    """The JSON contract of `python -m builderfile parse`, field for field the `dockerfile` package's Command.

    As there, ONBUILD reports its own flags with the triggered instruction's `sub_cmd`, `json` and
    `value`; `sub_flags` adds the triggered instruction's flags. `original` is BuildKit's logical
    line (continuations joined, heredoc bodies not included: they are in `heredocs`).
    """
    out = []
    for node in document.nodes:
        target = node.sub if node.sub is not None else node
        out.append(
            {
                "cmd": node.cmd,
                "sub_cmd": node.sub.cmd if node.sub is not None else None,
                "json": target.json,
                "flags": list(node.flags),
                "sub_flags": list(node.sub.flags) if node.sub is not None else [],
                "value": list(target.args),
                "start_line": node.start_line,
                "end_line": node.end_line,
                "original": node.original,
                "heredocs": [
                    {"name": doc.name, "file_descriptor": doc.file_descriptor, "content": doc.content}
                    for doc in node.heredocs
                ],
            }
        )
    return {"instructions": out}
