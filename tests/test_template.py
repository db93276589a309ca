"""The Go text/template subset of `--format`: the outputs are what Go prints for the same JSON-decoded data."""

from __future__ import annotations

import pytest

from imagekit.cli.template import go_format, parse
from imagekit.errors import TemplateError

DATA = {
    "Id": "sha256:abc",
    "RepoTags": ["a:1", "b:2"],
    "Size": 1234,
    "Config": {"Env": ["PATH=/bin", "A=<x>&"], "Labels": {"z": "last", "a": "first"}, "Cmd": None, "Tty": False},
    "Empty": [],
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{.Id}}", "sha256:abc"),
        ("id={{.Id}} size={{.Size}}", "id=sha256:abc size=1234"),
        ("{{.Config.Env}}", "[PATH=/bin A=<x>&]"),
        ("{{.Config.Labels}}", "map[a:first z:last]"),
        ("{{.Config.Cmd}}", "<nil>"),
        ("{{.Config.Tty}}", "false"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Config.Nope.Deeper}}", "<no value>"),
        ("{{json .Config.Env}}", '["PATH=/bin","A=\\u003cx\\u003e\\u0026"]'),
        ("{{json .Config.Labels}}", '{"z":"last","a":"first"}'),
        ("{{.RepoTags | json}}", '["a:1","b:2"]'),
        ('{{index .Config.Labels "z"}}', "last"),
        ('{{index .Config.Labels "missing"}}', "<no value>"),
        ("{{index .RepoTags 1}}", "b:2"),
        ("{{range .RepoTags}}[{{.}}]{{end}}", "[a:1][b:2]"),
        ("{{range $i, $t := .RepoTags}}{{$i}}={{$t}} {{end}}", "0=a:1 1=b:2 "),
        ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}},{{end}}", "a:first,z:last,"),
        ("{{range .Empty}}x{{else}}none{{end}}", "none"),
        ("{{range .RepoTags}}{{$.Id}} {{end}}", "sha256:abc sha256:abc "),
        ("{{if .Config.Cmd}}cmd{{else}}no cmd{{end}}", "no cmd"),
        ("{{if .Empty}}a{{else if .RepoTags}}b{{else}}c{{end}}", "b"),
        ("{{if not .Config.Tty}}no tty{{end}}", "no tty"),
        ('{{if and .RepoTags (eq .Size 1234)}}yes{{end}}', "yes"),
        ("{{with .Config}}{{len .Env}}{{end}}", "2"),
        ('{{join .RepoTags ", "}}', "a:1, b:2"),
        ('{{upper .Id}} {{lower "AB"}}', "SHA256:ABC ab"),
        ('{{printf "%s has %d tags" .Id (len .RepoTags)}}', "sha256:abc has 2 tags"),
        ("a  {{- .Size -}}  b", "a1234b"),
        ("{{`raw \\n`}}", "raw \\n"),
    ],
)
def test_renders_as_go_does(source: str, expected: str) -> None:
    assert parse(source).render(DATA) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{.Id", "template: unclosed action"),
        ("{{}}", "template: missing value in empty action {{}}"),
        ("{{nope .Id}}", 'template: function "nope" not defined'),
        ("{{if .Id}}x", "template: unexpected end of template: missing {{end}}"),
        ("{{end}}", "template: unexpected {{end}}"),
        ("{{.Id | }}", "template: missing command in pipeline"),
        ("{{(.Id}}", "template: unclosed left paren"),
        ("{{.Id ! }}", "template: unexpected '!' in action"),
        ("{{$x}}", "template: undefined variable '$x'"),
        ("{{index .RepoTags 5}}", "template: index out of range: 5"),
        ("{{.Id.Sub}}", "template: can't evaluate field Sub in 'sha256:abc'"),
        ("{{.Id 1}}", "template: can't give argument to non-function .Id"),
    ],
)
def test_refuses_with_one_line(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(source).render(DATA)
    assert str(caught.value) == message


def test_go_format_of_nested_values() -> None:
    assert go_format({"b": [1, {"c": True}], "a": None}) == "map[a:<nil> b:[1 map[c:true]]]"
    assert go_format(2.0) == "2" and go_format(2.5) == "2.5"
