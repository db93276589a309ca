"""The argument parsers of each keyword: BuildKit's line_parsers.go, reproduced behaviour for behaviour.

Owns how the text after an instruction's keyword and flags becomes argument nodes: JSON (exec) form
with its fallback to shell form, whitespace splitting, ENV/LABEL pairs with their separator node,
ARG's quote-aware words and HEALTHCHECK's type word. Each parser returns (args, is_json), or None
for "no argument nodes". Stdlib only; must not import imagekit.
"""

from __future__ import annotations

import json
import re

from builderfile._go import GO_SPACES, go_quote
from builderfile.errors import ParseError

Args = tuple[tuple[str, ...], bool] | None

WHITESPACE = re.compile(r"[\t\v\f\r ]+")
# Unicode spaces of one UTF-8 byte when Go reads a string byte by byte (unicode.IsSpace(rune(b))).
BYTE_SPACES = frozenset(b"\t\n\v\f\r \x85\xa0")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_string(rest: str, escape: str) -> Args:
    return ((rest,), False) if rest else None


def _split_whitespace(rest: str) -> Args:
    return (tuple(WHITESPACE.split(rest)), False) if rest else None


def _parse_whitespace_delimited(rest: str, escape: str) -> Args:
    return _split_whitespace(rest)


_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _reject_constant(name: str) -> float:
    raise ValueError(name)


def _go_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


# Go's encoding/json: no NaN/Infinity, and a number must fit a float64.
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_go_float, parse_int=_go_float)


def _parse_json(rest: str) -> tuple[str, ...] | None:
    """The strings of a JSON array, None when `rest` is not valid JSON; raises when an element is not a string."""
    rest = rest.lstrip(GO_SPACES)
    if not rest.startswith("["):
        return None
    try:
        value = _JSON_DECODER.decode(rest)
    except ValueError:
        return None
    except RecursionError:
        # Deeper than Python's decoder goes: valid JSON (Go allows 10000 levels) holds a nested
        # array, which is not a string; invalid JSON falls back to the shell form.
        if _deep_json_is_valid(rest):
            raise ParseError(f"{_NOT_STRINGS}: {_clip(rest)} nests arrays") from None
        return None
    if not isinstance(value, list):
        return None
    for item in value:
        if not isinstance(item, str):
            shown = str(int(item)) if isinstance(item, float) and item.is_integer() else json.dumps(item, ensure_ascii=False)
            raise ParseError(f"{_NOT_STRINGS}: {_clip(shown)} in {_clip(rest)} is not a string (quote it, or use the shell form)")
    # Go decodes invalid UTF-8 and lone surrogate escapes (\ud800) in JSON strings to U+FFFD.
    return tuple(item if item.isascii() else _SURROGATE.sub("\ufffd", item) for item in value)


_JSON_TOKEN = re.compile(
    r'[ \t\n\r]*(?:("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
    r"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(true|false|null)|([\[\]{},:]))"
)
_JSON_MAX_DEPTH = 10000  # encoding/json's scanner limit


def _deep_json_is_valid(text: str) -> bool:
    """Go's json.Valid without recursion: one value, at most 10000 levels deep, numbers within float64."""
    stack: list[str] = []
    state = "value"  # what may come next: value, first-value, key, first-key, colon, after
    pos, end = 0, len(text)
    while True:
        match = _JSON_TOKEN.match(text, pos)
        if match is None:
            return state == "after" and not stack and not text[pos:].strip(" \t\n\r")
        pos = match.end()
        string, number, literal, punct = match.groups()
        if state in ("value", "first-value") and (string or number or literal):
            if number and not _finite(number):
                return False
            state = "after"
        elif state in ("value", "first-value") and punct in ("[", "{"):
            stack.append(punct)
            if len(stack) > _JSON_MAX_DEPTH:
                return False
            state = "first-value" if punct == "[" else "first-key"
        elif (state == "first-value" and punct == "]") or (state == "first-key" and punct == "}"):
            stack.pop()
            state = "after"
        elif state in ("key", "first-key") and string:
            state = "colon"
        elif state == "colon" and punct == ":":
            state = "value"
        elif state == "after" and stack and punct == ",":
            state = "value" if stack[-1] == "[" else "key"
        elif state == "after" and stack and punct == {"[": "]", "{": "}"}[stack[-1]]:
            stack.pop()
        else:
            return False
        if pos >= end and not (state == "after" and not stack):
            return False


def _finite(number: str) -> bool:
    try:
        _go_float(number)
    except ValueError:
        return False
    return True


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_maybe_json(rest: str, escape: str) -> Args:
    if not rest:
        return None
    values = _parse_json(rest)
    if values is not None:
        return values, True
    return (rest,), False


def _parse_maybe_json_to_list(rest: str, escape: str) -> Args:
    values = _parse_json(rest)
    if values is not None:
        return values, True
    return _split_whitespace(rest)


def _parse_health(rest: str, escape: str) -> Args:
    # BuildKit finds the first word byte by byte (unicode.IsSpace(rune(byte))).
    if rest.isascii():
        kind, tail = _split_first_word(rest)
    else:
        data = rest.encode("utf-8", "surrogateescape")
        sep = 0
        while sep < len(data) and data[sep] not in BYTE_SPACES:
            sep += 1
        nxt = sep
        while nxt < len(data) and data[nxt] in BYTE_SPACES:
            nxt += 1
        kind = data[:sep].decode("utf-8", "surrogateescape")
        tail = data[nxt:].decode("utf-8", "surrogateescape")
    if not kind:
        return None
    command = _parse_maybe_json(tail, escape)
    if command is None:
        return (kind,), False
    return (kind, *command[0]), command[1]


def _split_first_word(rest: str) -> tuple[str, str]:
    sep = 0
    end = len(rest)
    while sep < end and rest[sep] not in "\t\n\v\f\r ":
        sep += 1
    nxt = sep
    while nxt < end and rest[nxt] in "\t\n\v\f\r ":
        nxt += 1
    return rest[:sep], rest[nxt:]


def parse_words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: split on spaces outside quotes, keeping quotes and escapes in the words."""
    if escape not in rest and rest.isascii():
        # Without escapes a word is a run of non-spaces and quoted strings (an open quote runs to the end).
        return _WORD.findall(rest)
    return _parse_words_slow(rest, escape)


_WORD = re.compile(r"""(?:[^\t\n\v\f\r "']+|"[^"]*"?|'[^']*'?)+""")


def _parse_words_slow(rest: str, escape: str) -> list[str]:
    """parse_words character by character, for escapes and non-ASCII text."""
    if _SURROGATE.search(rest):
        rest = _SURROGATE.sub("\ufffd", rest)
    words: list[str] = []
    word: list[str] = []
    in_word = in_quote = blank_ok = False
    quote = ""
    pos, end = 0, len(rest)
    spaces = GO_SPACES
    while pos <= end:
        ch = rest[pos] if pos < end else ""
        if not in_word and not in_quote:
            if pos == end:
                break
            if ch in spaces:
                pos += 1
                continue
            in_word = True
        if pos == end:
            if blank_ok or word:
                words.append("".join(word))
            break
        if in_word:
            if ch in spaces:
                in_word = False
                if blank_ok or word:
                    words.append("".join(word))
                word = []
                blank_ok = False
                pos += 1
                continue
            if ch == "'" or ch == '"':
                quote, blank_ok, in_word, in_quote = ch, True, False, True
            if ch == escape:
                if pos + 1 == end:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
            word.append(ch)
            pos += 1
            continue
        if ch == quote:
            in_quote, in_word = False, True
        if ch == escape and quote != "'":
            if pos + 1 == end:
                in_quote, in_word = False, True
                pos += 1
                continue
            pos += 1
            word.append(ch)
            ch = rest[pos]
        word.append(ch)
        pos += 1
    return words


def _parse_name_val(rest: str, escape: str, key: str) -> Args:
    words = parse_words(rest, escape)
    if not words:
        return None
    if "=" not in words[0]:
        parts = WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ParseError(f"{key} must have two arguments: {key} {rest} has a name but no value (write {key} {rest}=VALUE)")
        return (parts[0], parts[1], ""), False
    args: list[str] = []
    for word in words:
        name, sep, value = word.partition("=")
        if not sep:
            raise ParseError(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
        args += (name, value, "=")
    return tuple(args), False


def _parse_env(rest: str, escape: str) -> Args:
    return _parse_name_val(rest, escape, "ENV")


def _parse_label(rest: str, escape: str) -> Args:
    return _parse_name_val(rest, escape, "LABEL")


def _parse_name_or_name_val(rest: str, escape: str) -> Args:
    words = parse_words(rest, escape)
    return (tuple(words), False) if words else None


#: keyword -> argument parser; ONBUILD is absent: its rest is a whole instruction (see syntax).
ARGUMENT_PARSERS = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_env,
    "expose": _parse_whitespace_delimited,
    "from": _parse_whitespace_delimited,
    "healthcheck": _parse_health,
    "label": _parse_label,
    "maintainer": _parse_string,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}


