"""BuildKit's shell lexer: variable expansion, quote removal and word splitting, rule for rule.

Owns `Lex` (a port of frontend/dockerfile/shell/lex.go in behaviour, not a copy of its code):
`$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`, `${VAR?x}`, `${VAR:?x}`,
`${VAR#x}`, `${VAR##x}`, `${VAR%x}`, `${VAR%%x}`, `${VAR/x/y}`, `${VAR//x/y}`, single and double
quotes, the escape token, and the special parameters (`$1`, `$@`, ...) that always expand to "".
The quirks are BuildKit's and are kept on purpose: an escape token at the very end is dropped, an
unknown `${VAR:x}` modifier is an error, a leading U+FEFF is skipped (Go's text/scanner does so).
Stdlib only; must not import imagekit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from builderfile._go import GO_SPACES, go_quote
from builderfile.errors import ExpansionError

_SPACE_SET = frozenset(GO_SPACES)
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_EOF = ""
_SURROGATES = re.compile("[\ud800-\udfff]")
_WORD_SPECIALS = re.compile(r"[$<'\"\\`]")


def _go_text(text: str) -> str:
    """What Go's scanner reads: invalid UTF-8 (surrogate-escaped bytes) as U+FFFD, a leading BOM skipped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.isascii() and _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    return text


class _Words:
    """Splits the expanded text into words on Go whitespace; quoted or escaped text never splits."""

    __slots__ = ("word", "words", "in_word")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in _SPACE_SET:
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.word += ch
            self.in_word = True

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def finish(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
        self.word = ""
        self.in_word = False
        return self.words


class Lex:
    """A lexer configured like BuildKit's `shell.Lex`; `process_word` and `process_words` are reentrant."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expands and unquotes `word` as one string (spaces kept); raises ExpansionError."""
        if not self.raw_escapes and _WORD_SPECIALS.search(word) is None and "\ufeff" not in word[:1]:
            return word if (word.isascii() or _SURROGATES.search(word) is None) else _go_text(word)
        return _Scan(self, word, env).run()[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expands, unquotes and splits `word` into words on whitespace; raises ExpansionError."""
        return _Scan(self, word, env).run()[1]


class _Scan:
    """One pass over one input, mirroring lex.go's shellWord; every method consumes what it reads."""

    __slots__ = ("lex", "source", "text", "pos", "end", "env", "raw_escapes")

    def __init__(self, lex: Lex, word: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.source = word
        self.text = _go_text(word)
        self.pos = 0
        self.end = len(self.text)
        self.env = env
        self.raw_escapes = lex.raw_escapes

    def run(self) -> tuple[str, list[str]]:
        try:
            return self.stop_on(_EOF, self.raw_escapes)
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {go_quote(self.source)}: {err.message}") from None
        except RecursionError:  # ${a:-${b:-...}} nested thousands deep
            raise ExpansionError(f"failed to process {go_quote(self.source[:40])}...: substitutions nest too deeply") from None

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else _EOF

    def next(self) -> str:
        if self.pos < self.end:
            self.pos += 1
            return self.text[self.pos - 1]
        return _EOF

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        quotes = not self.lex.skip_process_quotes
        escape = self.lex.escape
        text = self.text
        while self.pos < self.end:
            ch = text[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.finish()
            if ch == "$":
                tmp = self.dollar()
                result.append(tmp)
                for c in tmp:
                    words.add_char(c)
            elif ch == "<":
                tmp = self.possible_heredoc()
                result.append(tmp)
                words.add_raw(tmp)
            elif quotes and (ch == "'" or ch == '"'):
                tmp = self.single_quote() if ch == "'" else self.double_quote()
                result.append(tmp)
                words.add_raw(tmp)
            else:
                self.pos += 1
                if ch == escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def single_quote(self) -> str:
        # Everything up to the next ' is literal; a ' cannot be escaped inside.
        start = self.pos + 1
        close = self.text.find("'", start)
        if close < 0:
            self.pos = self.end
            raise ExpansionError("unexpected end of statement while looking for matching single-quote")
        self.pos = close + 1
        if self.lex.raw_quotes:
            return self.text[start - 1 : close + 1]
        return self.text[start:close]

    def double_quote(self) -> str:
        # Literal except $ (expanded) and the escape token, which escapes only " $ and itself.
        result: list[str] = []
        escape = self.lex.escape
        ch = self.next()
        if self.lex.raw_quotes:
            result.append(ch)
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.pos += 1
                if self.lex.raw_quotes:
                    result.append(ch)
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
                continue
            self.pos += 1
            if ch == escape:
                if self.raw_escapes:
                    result.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue
                if following in ('"', "$", escape):
                    ch = self.next()
            result.append(ch)

    def dollar(self) -> str:
        self.pos += 1
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            value = self.env.get(name)
            if value is None:
                return "$" + name if self.lex.skip_unset_env else ""
            return value
        self.pos += 1
        following = self.peek()
        if following == _EOF:
            raise ExpansionError("syntax error: missing '}'")
        if following in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        modifier = ch or "\ufffd"
        if ch == "}":
            value = self.env.get(name)
            if value is None:
                return f"${{{name}}}" if self.lex.skip_unset_env else ""
            return value
        if ch == ":":
            ch = self.next()
            modifier += ch or "\ufffd"
            if ch == "#" or ch == "%":
                raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
            return self._modified(name, ch, modifier, null_is_unset=True)
        if ch in ("+", "-", "?", "#", "%"):
            return self._modified(name, ch, modifier, null_is_unset=False)
        if ch == "/":
            return self._replace(name)
        raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")

    def _modifier_word(self, ch: str) -> str:
        try:
            return self.stop_on("}", ch in ("#", "%"))[0]
        except ExpansionError:
            if self.peek() == _EOF:
                raise ExpansionError("syntax error: missing '}'") from None
            raise

    def _modified(self, name: str, ch: str, modifier: str, null_is_unset: bool) -> str:
        # After `:` any character lands here (lex.go falls through); the switch below rejects it
        # only after the word is read and only when the variable is not skipped as unset.
        word = self._modifier_word(ch)
        value = self.env.get(name)
        if value is None and self.lex.skip_unset_env:
            return f"${{{name}{modifier}{word}}}"
        if ch not in ("+", "-", "?", "#", "%") or ch == _EOF:
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        unset = value is None or (null_is_unset and value == "")
        if ch == "-":
            return word if unset else value  # type: ignore[return-value]
        if ch == "+":
            return "" if unset else word
        if ch == "?":
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)
        if greedy:
            word = word[1:]
        value = value or ""
        if ch == "%":
            return _trim_suffix(word, value, greedy)
        return _trim_prefix(word, value, greedy)

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.pos += 1
        try:
            pattern = self.stop_on("/", True)[0]
        except ExpansionError:
            if self.peek() == _EOF:
                raise ExpansionError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._modifier_word("#")
        value = self.env.get(name)
        if value is None and self.lex.skip_unset_env:
            return f"${{{name}/{pattern}/{replacement}}}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        value = value or ""
        if replace_all:
            return regex.sub(lambda m: _go_template(replacement, m), value)
        match = regex.search(value)
        if match is None:
            return value
        return value[: match.start()] + replacement + value[match.end() :]

    def name(self) -> str:
        text, pos, end = self.text, self.pos, self.end
        if pos >= end:
            return ""
        ch = text[pos]
        if ch.isdecimal():
            stop = pos
            while stop < end and text[stop].isdecimal():
                stop += 1
            self.pos = stop
            return text[pos:stop]
        if ch in _SPECIAL_PARAMS:
            self.pos += 1
            return ch
        stop = pos
        while stop < end and (text[stop].isalpha() or text[stop].isdecimal() or text[stop] == "_"):
            stop += 1
        self.pos = stop
        return text[pos:stop]

    def possible_heredoc(self) -> str:
        # `<<` keeps the spaces after it so `<< EOF` stays one word (BuildKit >= 0.22).
        self.pos += 1
        if self.peek() != "<":
            return "<"
        self.pos += 1
        start = self.pos
        while self.pos < self.end and self.text[self.pos] in "\t\r ":
            self.pos += 1
        return "<<" + self.text[start : self.pos]


def _pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, backslash escapes; no brackets) as a regex, like lex.go."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    text = _go_text(pattern)
    i, end = 0, len(text)
    while i < end:
        tok = text[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            if i < end and text[i] in "}/":
                continue
            tok = text[i] if i < end else ""
            i += 1
            if tok not in ("*", "?", "\\") or tok == "":
                shown = tok or "\ufffd"
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{shown}'")
            out.append("\\" + tok)
            continue
        out.append(re.escape(tok))
    return re.compile("".join(out))


_TEMPLATE_REF = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def _go_template(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand for ReplaceAllString: `$$` is `$`, `$0` the match, other groups are empty."""
    if "$" not in template:
        return template

    def ref(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name is None:
            return "$"
        return match.group(0) if name.isascii() and name.isdigit() and int(name) == 0 else ""

    return _TEMPLATE_REF.sub(ref, template)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy, anchored=True).search(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    # Reverse, but keep each escape in front of the character it escapes: a\*c -> c\*a.
    chars = list(pattern)
    out = [""] * len(chars)
    last = len(chars) - 1
    i = 0
    while i <= last:
        tok = chars[i]
        if tok == "\\" and i != last:
            out[last - i - 1] = tok
            out[last - i] = chars[i + 1]
            i += 2
        else:
            out[last - i] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexes find leftmost matches only, so reverse both sides to find the shortest suffix.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
