"""The build context: .dockerignore, Go wildcards, content checksums and the stat cache (with git's racy rule)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from builderfile.ignore import filepath_match_regex
from imagekit.builder.context import BuildContext
from imagekit.builder.statcache import RACY_NS, StatCache
from imagekit.errors import BuildError
from tests.builder.copy.conftest import Harness

OLD = 1_600_000_000  # an mtime far older than any cache write


def files(h: Harness) -> set[str]:
    return {path for path, entry in h.listing().items() if entry[0] != "dir"}


# --- .dockerignore ----------------------------------------------------------------------------------------


def test_dockerignore_with_exceptions(harness: Harness) -> None:
    harness.write(".dockerignore", "*.log\ndocs\n!docs/keep.md\nsecret*\n")
    for name in ("app.py", "debug.log", "docs/drop.md", "docs/keep.md", "secret.key", "sub/x.log"):
        harness.write(name)
    harness.copy("COPY . /src/")
    assert files(harness) == {"src/.dockerignore", "src/app.py", "src/docs/keep.md", "src/sub/x.log"}


def test_ignored_source_is_not_in_the_context(harness: Harness) -> None:
    harness.write(".dockerignore", "secret.key\n")
    harness.write("secret.key", "K")
    with pytest.raises(BuildError) as caught:
        harness.copy("COPY secret.key /k")
    assert str(caught.value) == "Builderfile:2: COPY secret.key: not in the build context (excluded by .dockerignore)"


def test_wildcards_skip_ignored_paths(harness: Harness) -> None:
    harness.write(".dockerignore", "b.txt\n")
    harness.write("a.txt")
    harness.write("b.txt")
    harness.copy("COPY *.txt /one")  # one match left: it may name a file
    assert files(harness) == {"one"}


def test_ignored_directory_holding_an_exception_is_present(harness: Harness) -> None:
    harness.write(".dockerignore", "docs\n!docs/keep.md\n")
    harness.write("docs/keep.md", "K")
    harness.write("docs/drop.md", "D")
    harness.copy("COPY docs /d/")
    assert files(harness) == {"d/keep.md"}


def test_builderfile_specific_ignore_file_wins(harness: Harness) -> None:
    harness.write(".dockerignore", "a.txt\n")
    harness.write("build/app.Builderfile.dockerignore", "b.txt\n")
    harness.builderfile = harness.write("build/app.Builderfile", "FROM scratch\n")
    harness.write("a.txt", "A")
    harness.write("b.txt", "B")
    harness.copy("COPY a.txt /a")
    with pytest.raises(BuildError, match="COPY b.txt: not in the build context"):
        harness.copy("COPY b.txt /b")


def test_bad_ignore_pattern_names_its_file_and_line(harness: Harness) -> None:
    harness.write(".dockerignore", "ok\n# comment\n[\n")
    with pytest.raises(BuildError) as caught:
        harness.build_context()
    assert str(caught.value).startswith(f"{harness.context / '.dockerignore'}:3: bad pattern '['")


def test_ignored_files_do_not_change_the_checksum(harness: Harness) -> None:
    harness.write(".dockerignore", "**/*.log\n.git\n")
    harness.write("src/main.c", "int main;")
    before = harness.plan("COPY . /app/").checksum()
    harness.write("src/noise.log", "whatever")
    harness.write(".git/HEAD", "ref: main")
    assert harness.plan("COPY . /app/").checksum() == before
    harness.write("src/other.c", "x")
    assert harness.plan("COPY . /app/").checksum() != before


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file", tmp_path / "missing"):
        with pytest.raises(BuildError, match=f"build context {path}: not a directory"):
            BuildContext(path, None)


def test_path_of_for_bind_mounts(harness: Harness) -> None:
    harness.write("dir/f", "F")
    os.symlink("/dir", harness.context / "link")
    context = harness.build_context()
    assert context.path_of("dir/f") == harness.context.resolve() / "dir" / "f"
    assert context.path_of("/link") == harness.context.resolve() / "dir"
    assert context.path_of("/") == harness.context.resolve()
    for source, message in (("../x", "outside the build context"), ("nope", "not in the build context")):
        with pytest.raises(BuildError, match=message):
            context.path_of(source)


# --- checksums ----------------------------------------------------------------------------------------------


def test_checksum_sees_content_modes_names_and_links_but_not_times(harness: Harness) -> None:
    harness.write("d/f", "1")
    os.symlink("f", harness.context / "d" / "l")
    step = "COPY d /app/"
    first = harness.plan(step).checksum()
    assert harness.plan(step).checksum() == first
    os.utime(harness.context / "d" / "f", (OLD, OLD))
    assert harness.plan(step).checksum() == first  # a touch is not a change (BuildKit's contenthash)
    changes = [
        lambda: (harness.context / "d" / "f").write_text("2"),
        lambda: (harness.context / "d" / "f").chmod(0o600),
        lambda: (harness.context / "d" / "f").rename(harness.context / "d" / "g"),
        lambda: ((harness.context / "d" / "l").unlink(), os.symlink("g2", harness.context / "d" / "l")),
    ]
    seen = {first}
    for change in changes:
        change()
        checksum = harness.plan(step).checksum()
        assert checksum not in seen
        seen.add(checksum)


def test_checksum_sees_the_destination_and_flags(harness: Harness) -> None:
    harness.write("f", "F")
    sums = {harness.plan(step).checksum() for step in ("COPY f /a", "COPY f /b", "COPY f /a/", "COPY --chmod=600 f /a", "ADD f /a")}
    assert len(sums) == 5


# --- the stat cache ----------------------------------------------------------------------------------------------


def test_unchanged_old_files_come_from_the_cache(harness: Harness) -> None:
    for index in range(5):
        harness.write(f"d/f{index}", f"content {index}", mtime=OLD)
    first = harness.build_context()
    checksum = harness.plan("COPY d /d/", context=first).checksum()
    assert first.hashed_files == 5
    second = harness.build_context()
    assert harness.plan("COPY d /d/", context=second).checksum() == checksum
    assert second.hashed_files == 0
    harness.write("d/f3", "changed!!", mtime=OLD)  # a different size
    third = harness.build_context()
    assert harness.plan("COPY d /d/", context=third).checksum() != checksum
    assert third.hashed_files == 1


def test_same_size_rewrite_within_a_second_is_noticed(harness: Harness) -> None:
    path = harness.write("f", "AAAA")
    first = harness.plan("COPY f /f").checksum()
    path.write_text("BBBB")  # same size, within the second of the cache write
    second = harness.build_context()
    assert harness.plan("COPY f /f", context=second).checksum() != first
    assert second.hashed_files == 1


def test_cache_is_rewritten_only_when_something_changed_or_was_racy(harness: Harness) -> None:
    harness.write("old", "O", mtime=OLD)
    harness.plan("COPY old /o")
    (cache,) = harness.cache.iterdir()
    inode = cache.stat().st_ino
    harness.plan("COPY old /o")
    assert cache.stat().st_ino == inode  # all hits: nothing to write, the old write time stays
    harness.write("fresh", "F")
    harness.plan("COPY fresh /f")
    inode = cache.stat().st_ino
    harness.plan("COPY fresh /f")
    assert cache.stat().st_ino != inode  # a racy entry: written again, so a later build can trust it


def test_racy_entries_are_rehashed_even_when_the_stat_matches(tmp_path: Path) -> None:
    """git's rule on its own: a poisoned entry is believed for an old file, never for a fresh one."""
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    fresh.write_text("x")
    old.write_text("x")
    os.utime(old, (OLD, OLD))
    cache = StatCache(tmp_path / "cache.json")
    cache.put("fresh", fresh.stat(), "poisoned")
    cache.put("old", old.stat(), "poisoned")
    cache.save()
    reloaded = StatCache(tmp_path / "cache.json")
    assert reloaded.written_ns >= fresh.stat().st_mtime_ns
    assert reloaded.get("old", old.stat()) == "poisoned"  # the stat matches and the file is old: a hit
    assert reloaded.get("fresh", fresh.stat()) is None  # modified less than RACY_NS before the write
    os.utime(fresh, ns=(reloaded.written_ns - RACY_NS - 1,) * 2)
    assert reloaded.get("fresh", fresh.stat()) is None  # its ctime moved: the stat no longer matches


def test_cache_file_is_replaced_atomically_and_survives_corruption(harness: Harness) -> None:
    harness.write("f", "F", mtime=OLD)
    harness.plan("COPY f /f")
    caches = list(harness.cache.iterdir())
    assert len(caches) == 1 and caches[0].suffix == ".json"
    caches[0].write_text("{not json")
    context = harness.build_context()
    harness.plan("COPY f /f", context=context)
    assert context.hashed_files == 1
    assert [p.name for p in harness.cache.iterdir()] == [caches[0].name]  # no temp files left


def test_special_files_are_left_out(harness: Harness) -> None:
    harness.write("d/f", "F")
    os.mkfifo(harness.context / "d" / "pipe")
    harness.copy("COPY d /app/")
    assert files(harness) == {"app/f"}
    with pytest.raises(BuildError, match="COPY d/pipe: no source files were specified"):
        harness.copy("COPY d/pipe /p")


def test_deep_trees_and_odd_names(harness: Harness) -> None:
    """A tree deeper than the recursion limit allows, a name that is not UTF-8 and one with a newline."""
    deep = harness.context / "/".join(["d"] * 400)
    deep.mkdir(parents=True)
    (deep / "leaf").write_text("L")
    odd = os.fsdecode(b"bad\xffname")
    harness.write(odd, "B")
    harness.write("new\nline", "N")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)  # walks, matches and writes must not recurse per level
    try:
        checksum = harness.plan("COPY . /app/").checksum()
        harness.copy("COPY . /app/")
        again = harness.plan("COPY . /app/").checksum()
        harness.copy("COPY d*/d/d /wild/")
    finally:
        sys.setrecursionlimit(limit)
    assert (harness.root / "app" / "/".join(["d"] * 400) / "leaf").read_text() == "L"
    assert (harness.root / "app" / odd).read_text() == "B"
    assert (harness.root / "app" / "new\nline").read_text() == "N"
    assert again == checksum  # the cache file holds such names too
    assert (harness.root / "wild" / "/".join(["d"] * 397) / "leaf").read_text() == "L"


def test_large_files_hash_in_chunks(harness: Harness) -> None:
    import hashlib

    data = os.urandom(3 << 20)
    harness.write("big", data)
    plan = harness.plan("COPY big /big")
    assert plan.sources[0].nodes[0].digest == hashlib.sha256(data).hexdigest()
    assert plan.sources[0].nodes[0].size == len(data)


# --- Go's filepath.Match ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("abc", "abc", True),
        ("*", "abc", True),
        ("*c", "abc", True),
        ("a*", "a", True),
        ("a*", "ab/c", False),
        ("a*/b", "abc/b", True),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
        ("a*b?c*x", "abxbbxdbxebxczzx", True),
        ("a*b?c*x", "abxbbxdbxebxczzy", False),
        ("ab[c]", "abc", True),
        ("ab[b-d]", "abc", True),
        ("ab[e-g]", "abc", False),
        ("ab[^c]", "abc", False),
        ("ab[^b-d]", "abe", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "ab", False),
        ("a?b", "a☺b", True),
        ("a[^a]b", "a☺b", True),
        ("a???b", "a☺b", False),
        ("[\\]a]", "]", True),
        ("[\\-]", "-", True),
        ("[x\\-]", "z", False),
        ("a?", "a/", False),
        ("*x", "xxx", True),
        (".*", ".hidden", True),
        ("a.b", "axb", False),
    ],
)
def test_go_filepath_match(pattern: str, name: str, matches: bool) -> None:
    assert bool(filepath_match_regex(pattern).match(name)) is matches


@pytest.mark.parametrize("pattern", ["[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[a-b-c]x" + "[", "\\", "a\\"])
def test_go_filepath_match_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        filepath_match_regex(pattern)
