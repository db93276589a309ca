"""The subset of Go's text/template that people put in `docker ... --format` scripts, over JSON-like data.

Owns parsing and rendering of `--format` templates for `images` and `inspect`: fields (`{{.Id}}`,
`{{.Config.Env}}`, `{{$v.Key}}`), strings and numbers, pipelines (`{{.X | json}}`), parentheses,
`{{if}}/{{else if}}/{{else}}/{{end}}`, `{{range}}` (with `$i, $v :=`), `{{with}}`, trim markers
(`{{- x -}}`), and the functions scripts use: docker's `json`, `join`, `split`, `upper`, `lower`,
`title`, `truncate`, `pad`, `println` and Go's `index`, `len`, `printf` (%s %d %v %q), `not`, `and`, `or`,
`eq`, `ne`, `lt`, `le`, `gt`, `ge`. Values print as Go prints them (`[a b]`, `map[k:v]`, `<no value>`
for a missing key), so output matches docker's for the same data.
Anything else is a TemplateError naming the problem, before any output is written.

Imports: stdlib and imagekit.errors only.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from imagekit.errors import TemplateError
from imagekit.values import field, value

NO_VALUE = object()  # a missing map key: Go prints `<no value>`

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<close>-?\}\})
    | (?P<string>"(?:[^"\\\n]|\\.)*"|`[^`]*`)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<field>(?:\$[A-Za-z_]\w*|\$)?(?:\.[A-Za-z_]\w*)+|\.)
    | (?P<variable>\$[A-Za-z_]\w*|\$)
    | (?P<word>[A-Za-z_]\w*)
    | (?P<punct>:=|[|(),=])
    )""",
    re.VERBOSE,
)


@value
class _Token:
    kind: str
    text: str


@value
class _Node:
    kind: str  # text, action, if, range, with
    text: str = ""
    pipeline: list[list[_Token | list[Any]]] = field(default_factory=list)
    variables: tuple[str, ...] = ()
    body: tuple[_Node, ...] = ()
    otherwise: tuple[_Node, ...] = ()


def _lex(source: str) -> list[_Node | list[_Token]]:
    """Text pieces and the token lists of actions, with `{{-`/`-}}` whitespace trimming applied."""
    items: list[_Node | list[_Token]] = []
    pos = 0
    trim_next = False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next:
            text = text.lstrip()
        if start >= 0 and source.startswith("{{- ", start):
            text = text.rstrip()
        if text:
            items.append(_Node("text", text))
        if start < 0:
            return items
        pos = start + (4 if source.startswith("{{- ", start) else 2)
        tokens: list[_Token] = []
        while True:
            match = _TOKEN.match(source, pos)
            if match is None or match.end() == pos:
                rest = source[pos:].split()
                raise TemplateError(f"template: unexpected {rest[0][:20]!r} in action" if rest else "template: unclosed action")
            pos = match.end()
            kind = match.lastgroup or ""
            if kind == "close":
                trim_next = match.group(kind).startswith("-")
                break
            tokens.append(_Token(kind, match.group(kind)))
        if not tokens:
            raise TemplateError("template: missing value in empty action {{}}")
        items.append(tokens)


class _Parser:
    def __init__(self, items: list[_Node | list[_Token]]) -> None:
        self.items = items
        self.pos = 0

    def block(self, closers: tuple[str, ...]) -> tuple[list[_Node], str, list[_Token]]:
        """Nodes up to one of `closers` (`end`, `else`); returns them, the closer and its tokens."""
        nodes: list[_Node] = []
        while self.pos < len(self.items):
            item = self.items[self.pos]
            self.pos += 1
            if isinstance(item, _Node):
                nodes.append(item)
                continue
            keyword = item[0].text if item[0].kind == "word" else ""
            if keyword in closers:
                return nodes, keyword, item[1:]
            if keyword in ("end", "else"):
                raise TemplateError(f"template: unexpected {{{{{keyword}}}}}")
            if keyword in ("if", "range", "with"):
                nodes.append(self.control(keyword, item[1:]))
            else:
                nodes.append(_Node("action", pipeline=_pipeline(item)))
        if closers:
            raise TemplateError("template: unexpected end of template: missing {{end}}")
        return nodes, "", []

    def control(self, keyword: str, tokens: list[_Token]) -> _Node:
        variables: list[str] = []
        if keyword == "range" and any(t.text == ":=" for t in tokens):
            split = next(i for i, t in enumerate(tokens) if t.text == ":=")
            variables = [t.text for t in tokens[:split] if t.kind == "variable"]
            tokens = tokens[split + 1 :]
        if not tokens:
            raise TemplateError(f"template: missing value for {keyword}")
        pipeline = _pipeline(tokens)
        body, closer, rest = self.block(("end", "else"))
        otherwise: list[_Node] = []
        if closer == "else":
            if rest and rest[0].text == "if" and keyword == "if":
                otherwise = [self.control("if", rest[1:])]  # else if: its {{end}} closes this block too
            else:
                otherwise, _, _ = self.block(("end",))
        return _Node(keyword, pipeline=pipeline, variables=tuple(variables), body=tuple(body), otherwise=tuple(otherwise))


def _pipeline(tokens: list[_Token]) -> list[list[_Token | list[Any]]]:
    """Commands separated by `|`; a parenthesised group becomes a nested pipeline operand."""
    commands: list[list[_Token | list[Any]]] = [[]]
    stack: list[list[list[_Token | list[Any]]]] = []
    for token in tokens:
        if token.text == "(":
            stack.append(commands)
            commands = [[]]
        elif token.text == ")":
            if not stack:
                raise TemplateError("template: unexpected ) in operand")
            inner, commands = commands, stack.pop()
            commands[-1].append(inner)
        elif token.text == "|":
            commands.append([])
        elif token.kind == "punct":
            raise TemplateError(f"template: unexpected {token.text!r} in command")
        else:
            commands[-1].append(token)
    if stack:
        raise TemplateError("template: unclosed left paren")
    if any(not command for command in commands):
        raise TemplateError("template: missing command in pipeline")
    return commands


def go_format(value: Any) -> str:
    """A value as Go's fmt %v prints the JSON-decoded equivalent."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    return value not in (None, NO_VALUE, False, 0, "") and not (isinstance(value, list | tuple | Mapping) and not value)


def _json(value: Any) -> str:
    text = json.dumps(None if value is NO_VALUE else value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # as Go's json.Marshal


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, NO_VALUE) if isinstance(key, str) else NO_VALUE
        elif isinstance(value, list | tuple) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(value):
                raise TemplateError(f"template: index out of range: {key}")
            value = value[key]
        elif value in (None, NO_VALUE):
            return NO_VALUE
        else:
            raise TemplateError(f"template: cannot index {go_format(value)[:30]!r} with {go_format(key)!r}")
    return value


def _printf(form: str, *args: Any) -> str:
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        verb = match.group(1)
        if verb == "%":
            return "%"
        value = next(values, NO_VALUE)
        if verb == "q":
            return json.dumps(go_format(value), ensure_ascii=False)
        return go_format(value)

    return re.sub(r"%([sdvq%])", one, form)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(left: Any, right: Any) -> bool:
        try:
            return op(left, right)
        except TypeError as err:
            raise TemplateError(f"template: incompatible types for comparison: {go_format(left)!r} and {go_format(right)!r}") from err

    return compare


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "index": _index,
    "len": lambda value: len(value) if isinstance(value, str | list | tuple | Mapping) else 0,
    "join": lambda values, sep: sep.join(go_format(v) for v in (values or [])),
    "split": lambda text, sep: go_format(text).split(sep),
    "upper": lambda text: go_format(text).upper(),
    "lower": lambda text: go_format(text).lower(),
    "title": lambda text: go_format(text).title(),
    "truncate": lambda text, length: go_format(text)[: int(length)],
    "pad": lambda text, before, after: " " * int(before) + go_format(text) + " " * int(after),
    "println": lambda *values: " ".join(go_format(v) for v in values) + "\n",
    "print": lambda *values: "".join(go_format(v) for v in values),
    "printf": _printf,
    "not": lambda value: not _truthy(value),
    "and": lambda *values: next((v for v in values if not _truthy(v)), values[-1]),
    "or": lambda *values: next((v for v in values if _truthy(v)), values[-1]),
    "eq": _compare(lambda a, b: a == b),
    "ne": _compare(lambda a, b: a != b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
}


@value
class Template:
    """A parsed template; `render(data)` is its output for one object (a dict decoded from JSON)."""

    source: str
    nodes: tuple[_Node, ...]

    def render(self, data: Any) -> str:
        out: list[str] = []
        _run(list(self.nodes), data, {"$": data}, out)
        return "".join(out)


def parse(source: str) -> Template:
    """Parses `source`; TemplateError for what Go's parser would refuse or this subset lacks."""
    nodes, _, _ = _Parser(_lex(source)).block(())
    for node in _walk(nodes):
        for command in node.pipeline:
            _check_command(command)
    return Template(source, tuple(nodes))


def _walk(nodes: list[_Node] | tuple[_Node, ...]) -> list[_Node]:
    found = []
    for node in nodes:
        found.append(node)
        found.extend(_walk(node.body) + _walk(node.otherwise))
    return found


def _check_command(command: list[_Token | list[Any]]) -> None:
    for i, operand in enumerate(command):
        if isinstance(operand, list):
            for inner in operand:
                _check_command(inner)
        elif operand.kind == "word" and operand.text not in ("true", "false", "nil"):
            if operand.text not in FUNCTIONS:
                raise TemplateError(f'template: function "{operand.text}" not defined')
            if i > 0:
                raise TemplateError(f"template: function {operand.text!r} used as an argument: put it in parentheses")


def _run(nodes: list[_Node] | tuple[_Node, ...], dot: Any, variables: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "action":
            value = _pipe(node.pipeline, dot, variables)
            out.append(go_format(value))
        elif node.kind in ("if", "with"):
            value = _pipe(node.pipeline, dot, variables)
            if _truthy(value):
                _run(node.body, value if node.kind == "with" else dot, variables, out)
            else:
                _run(node.otherwise, dot, variables, out)
        else:  # range
            value = _pipe(node.pipeline, dot, variables)
            if isinstance(value, Mapping):
                pairs = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, list | tuple):
                pairs = list(enumerate(value))
            elif value in (None, NO_VALUE):
                pairs = []
            else:
                raise TemplateError(f"template: range can't iterate over {go_format(value)[:30]}")
            for key, item in pairs:
                scope = dict(variables)
                if len(node.variables) == 1:
                    scope[node.variables[0]] = item
                elif len(node.variables) == 2:
                    scope[node.variables[0]], scope[node.variables[1]] = key, item
                _run(node.body, item, scope, out)
            if not pairs:
                _run(node.otherwise, dot, variables, out)


def _pipe(commands: list[list[_Token | list[Any]]], dot: Any, variables: dict[str, Any]) -> Any:
    value: Any = NO_VALUE
    for i, command in enumerate(commands):
        head = command[0]
        args = [_operand(a, dot, variables) for a in command[1:]] + ([value] if i else [])
        if isinstance(head, _Token) and head.kind == "word" and head.text in FUNCTIONS:
            try:
                value = FUNCTIONS[head.text](*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, AttributeError, IndexError) as err:
                raise TemplateError(f"template: error calling {head.text}: {err}") from err
        elif args:
            raise TemplateError(f"template: can't give argument to non-function {_describe(head)}")
        else:
            value = _operand(head, dot, variables)
    return value


def _describe(operand: _Token | list[Any]) -> str:
    return operand.text if isinstance(operand, _Token) else "(...)"


def _operand(operand: _Token | list[Any], dot: Any, variables: dict[str, Any]) -> Any:
    if isinstance(operand, list):
        return _pipe(operand, dot, variables)
    kind, text = operand.kind, operand.text
    if kind == "string":
        return text[1:-1] if text.startswith("`") else ast.literal_eval(text)
    if kind == "number":
        return float(text) if "." in text else int(text)
    if kind == "word":
        if text in ("true", "false"):
            return text == "true"
        if text == "nil":
            return None
        return FUNCTIONS[text]()
    if kind == "variable":
        if text not in variables:
            raise TemplateError(f"template: undefined variable {text!r}")
        return variables[text]
    # a field chain: `.A.B`, `$v.A`, `.`
    base, _, chain = text.partition(".") if text.startswith("$") else ("", "", text[1:])
    if base:
        if base not in variables:
            raise TemplateError(f"template: undefined variable {base!r}")
        value = variables[base]
    else:
        value = dot
    for name in filter(None, chain.split(".")):
        if isinstance(value, Mapping):
            value = value.get(name, NO_VALUE)
        elif value in (None, NO_VALUE):
            return NO_VALUE
        else:
            raise TemplateError(f"template: can't evaluate field {name} in {go_format(value)[:30]!r}")
    return value
