"""WWW-Authenticate challenges (RFC 7235 §4.1) and token scopes (distribution auth/scope.md).

A registry answers 401 with one or more challenges, possibly folded into one header by the HTTP
library: `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull,push", Basic
realm="x"`. Values are tokens or quoted strings that may contain commas, `=` and backslash escapes, so
a comma split is wrong: this module tokenizes the header properly. It also merges scopes, because a
push that mounts from another repository needs `repository:B:pull,push` and `repository:A:pull` at once.

Imports: stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from imagekit.values import field, value

# RFC 7230 tchar; token68 adds "/" and allows trailing "=" padding.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = _TCHAR | frozenset("/")
_OWS = " \t"


class ChallengeSyntaxError(ValueError):
    """A WWW-Authenticate header that does not follow RFC 7235; the message names the position."""


@value
class Challenge:
    """One auth challenge: `scheme` lowercased, `params` with lowercased names, or a `token68` blob."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name.lower(), default)


class _Scanner:
    """A cursor over the header text with the few lexical rules RFC 7235 needs."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ows(self) -> None:
        while self.peek() and self.peek() in _OWS:
            self.pos += 1

    def skip_separators(self) -> None:
        while self.peek() and (self.peek() in _OWS or self.peek() == ","):
            self.pos += 1

    def token(self, chars: frozenset[str] = _TCHAR) -> str:
        start = self.pos
        while self.peek() and self.peek() in chars:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """Reads a quoted-string starting at `"`; backslash escapes any next character."""
        self.pos += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ChallengeSyntaxError(f"unterminated quoted string at offset {self.pos}")
            self.pos += 1
            if ch == '"':
                return "".join(out)
            if ch == "\\":
                escaped = self.peek()
                if not escaped:
                    raise ChallengeSyntaxError(f"dangling backslash at offset {self.pos}")
                out.append(escaped)
                self.pos += 1
            else:
                out.append(ch)

    def looking_at_param(self) -> bool:
        """True when the text ahead is `token OWS =` but not a token68 ending in `=` padding."""
        save = self.pos
        try:
            if not self.token():
                return False
            self.skip_ows()
            if self.peek() != "=":
                return False
            self.pos += 1
            self.skip_ows()
            return self.peek() not in ("=", ",", "")
        finally:
            self.pos = save


def parse_challenges(header: str) -> tuple[Challenge, ...]:
    """Every challenge in `header`, in order; raises ChallengeSyntaxError on malformed input."""
    scan = _Scanner(header)
    challenges: list[Challenge] = []
    scan.skip_separators()
    while not scan.at_end():
        scheme = scan.token()
        if not scheme:
            raise ChallengeSyntaxError(f"expected an auth scheme at offset {scan.pos}")
        params: dict[str, str] = {}
        token68: str | None = None
        if scan.peek() and scan.peek() in _OWS:
            scan.skip_ows()
            if scan.peek() not in (",", "") and not scan.looking_at_param():
                token68 = scan.token(_TOKEN68) + scan.token(frozenset("="))
                if not token68:
                    raise ChallengeSyntaxError(f"unexpected {scan.peek()!r} at offset {scan.pos}")
            else:
                _read_params(scan, params)
        challenges.append(Challenge(scheme.lower(), params, token68))
        scan.skip_ows()
        if not scan.at_end() and scan.peek() != "," and (token68 is not None or not params):
            raise ChallengeSyntaxError(f"unexpected {scan.peek()!r} at offset {scan.pos}")
        scan.skip_separators()
    return tuple(challenges)


def _read_params(scan: _Scanner, params: dict[str, str]) -> None:
    """Reads `name=value` pairs separated by commas until the next challenge's scheme or the end."""
    while True:
        scan.skip_separators()
        if scan.at_end() or not scan.looking_at_param():
            return
        name = scan.token().lower()
        scan.skip_ows()
        scan.pos += 1  # "="
        scan.skip_ows()
        value = scan.quoted() if scan.peek() == '"' else scan.token()
        if name in params:
            raise ChallengeSyntaxError(f"parameter {name!r} repeated")
        params[name] = value
        scan.skip_ows()
        if not scan.at_end() and scan.peek() != ",":
            raise ChallengeSyntaxError(f"unexpected {scan.peek()!r} after parameter {name!r} at offset {scan.pos}")


def pull_scope(repository: str) -> str:
    """The scope that lets us read `repository` (a path like `library/ubuntu`)."""
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    """The scope that lets us write `repository`; registries want pull as well for a push."""
    return f"repository:{repository}:pull,push"


def split_scope(scope: str) -> tuple[str, str, tuple[str, ...]]:
    """`type:name:actions` -> parts; `name` may hold one `:` (a host port), so split at both ends."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        raise ValueError(f"invalid scope {scope!r}: expected type:name:actions")
    return kind, name, tuple(a for a in actions.split(",") if a)


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes with the actions of each resource united, sorted: a stable token-cache key."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        kind, name, actions = split_scope(scope)
        merged.setdefault((kind, name), set()).update(actions)
    return tuple(f"{kind}:{name}:{','.join(sorted(actions))}" for (kind, name), actions in sorted(merged.items()))


def scopes_cover(granted: Iterable[str], wanted: Iterable[str]) -> bool:
    """True when every action in `wanted` is among `granted` for the same resource."""
    have: dict[tuple[str, str], set[str]] = {}
    for scope in granted:
        kind, name, actions = split_scope(scope)
        have.setdefault((kind, name), set()).update(actions)
    for scope in wanted:
        kind, name, actions = split_scope(scope)
        if not set(actions) <= have.get((kind, name), set()):
            return False
    return True
