""".dockerignore: moby patternmatcher's matching table, BuildKit's ignorefile reading, and file choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builderfile.errors import IgnoreFileError
from builderfile._go import go_clean
from builderfile.ignore import Matcher, compile_pattern, ignore_file, included, load_matcher, read_patterns

# (pattern, path, matches): the single-pattern cases of moby/patternmatcher's TestMatches.
MATCHES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True), ("**", "/", True),
    ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/**", "dir/file", True), ("**/**", "dir/file/", True), ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/**", "dir/dir2/dir3/file", True), ("**file", "file", True),
    ("**file", "dir/file", True), ("**/file", "dir/file", True), ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True), ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True), ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False), ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True), ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False), ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True), ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False), ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False), ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("docs", "docs/a/b.md", True), ("*", "a/b", True), ("a/b", "a", False), ("a?b", "a/b", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES)
def test_patternmatcher_table(pattern: str, path: str, expected: bool) -> None:
    assert Matcher([pattern]).ignored(path) is expected


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # later patterns win
        (["docs", "!docs/keep"], "docs/keep/a", False),  # an exception on a parent directory
        (["docs/**", "!docs/keep", "docs/keep/tmp"], "docs/keep/tmp/x", True),
        (["**", "!src/**/*.py"], "src/a/b.py", False),
        (["**", "!src/**/*.py"], "src/a/b.txt", True),
    ],
)
def test_exceptions_and_order(patterns: list[str], path: str, expected: bool) -> None:
    assert Matcher(patterns).ignored(path) is expected


def test_reading_like_buildkit() -> None:
    data = b"\xef\xbb\xbf# comment\r\n  /abs/path/  \r\n !  /neg//x/../y \n\n#x\n ./a/./b\n  # not a comment once trimmed\n"
    assert read_patterns(data) == [(2, "abs/path"), (3, "!neg/y"), (6, "a/b"), (7, "# not a comment once trimmed")]


@pytest.mark.parametrize(
    ("path", "cleaned"), [("", "."), ("a//b/", "a/b"), ("/../a", "/a"), ("../../a", "../../a"), ("a/../..", ".."), ("//a", "/a")]
)
def test_go_clean(path: str, cleaned: str) -> None:
    assert go_clean(path) == cleaned


@pytest.mark.parametrize("bad", ["[", "a[]b", "[a-]", "x\\", "!"])
def test_bad_patterns_are_errors_with_their_line(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_pattern(bad)
    with pytest.raises(IgnoreFileError) as caught:
        Matcher(read_patterns(f"ok\n{bad}\n"))
    assert caught.value.line == 2 and bad.rstrip("\\") in caught.value.message


def test_ignore_file_beside_the_builderfile_wins(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "sub").mkdir(parents=True)
    builderfile = context / "sub" / "Builderfile"
    builderfile.write_text("FROM a\n")
    assert ignore_file(context, builderfile) is None and not load_matcher(context, builderfile).ignored("x")
    (context / ".dockerignore").write_text("*.log\n")
    assert ignore_file(context, builderfile) == context / ".dockerignore"
    (context / "sub" / "Builderfile.dockerignore").write_text("*.tmp\n")
    matcher = load_matcher(context, builderfile)
    assert matcher.ignored("a.tmp") and not matcher.ignored("a.log")
    other = context / "Dockerfile"
    (context / "Dockerfile.dockerignore").write_text("secret\n")
    assert load_matcher(context, other).ignored("secret/key")


def test_included_walks_the_context_and_enters_dirs_only_for_exceptions(tmp_path: Path) -> None:
    for path in ["a.txt", "docs/x.md", "docs/keep/y.md", "node_modules/m/index.js", "src/main.py", ".git/HEAD"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    (tmp_path / ".dockerignore").write_text(".git\nnode_modules\ndocs\n!docs/keep\n*.txt\n")
    assert included(tmp_path, load_matcher(tmp_path)) == [
        ".dockerignore", "docs/keep", "docs/keep/y.md", "src", "src/main.py",
    ]
    assert "node_modules" not in included(tmp_path, Matcher(["node_modules"]))


_PATTERN_CHARS = st.sampled_from(list("ab/*?[]^!-\\.{}()+|$ \t") + ["**", "é"])


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(st.lists(_PATTERN_CHARS, max_size=8).map("".join), max_size=4),
       path=st.lists(st.sampled_from(["a", "b", "ab", ".", "é", "[", "a*"]), min_size=1, max_size=4).map("/".join))
def test_any_pattern_either_compiles_or_is_a_located_error(patterns: list[str], path: str) -> None:
    try:
        matcher = Matcher(read_patterns("\n".join(patterns)))
    except IgnoreFileError as err:
        assert err.line >= 1 and "\n" not in err.message
    else:
        assert matcher.ignored(path) in (True, False)
