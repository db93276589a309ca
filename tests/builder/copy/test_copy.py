"""COPY: Docker/BuildKit's destination rules, sources, flags and the in-root writes (plain temp dirs as roots)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from builderfile.errors import BuilderfileError

from imagekit.builder.context import BuildContext
from imagekit.builder.copy_apply import apply, owner_for
from imagekit.builder.copy_plan import plan_copy
from imagekit.errors import BuildError
from tests.builder.copy.conftest import Harness, instruction

MULTI = "Builderfile:2: When using COPY with more than one source file, the destination must be a directory and end with a /"


def files(h: Harness) -> set[str]:
    return {path for path, entry in h.listing().items() if entry[0] != "dir"}


# --- destinations ------------------------------------------------------------------------------------


def test_trailing_slash_means_into_a_new_directory(harness: Harness) -> None:
    harness.write("a.txt", "A")
    harness.copy("COPY a.txt /app/")
    assert harness.listing()["app"] == ("dir", 0o755, 0, 0)
    assert harness.listing()["app/a.txt"] == ("file", 0o644, 0, 0, b"A")


def test_no_trailing_slash_names_the_file(harness: Harness) -> None:
    harness.write("a.txt", "A")
    harness.copy("COPY a.txt /opt/renamed")
    assert harness.listing()["opt/renamed"][4] == b"A"
    assert harness.listing()["opt"] == ("dir", 0o755, 0, 0)


def test_file_into_an_existing_directory_without_slash(harness: Harness) -> None:
    harness.write("a.txt", "A")
    (harness.root / "app").mkdir(mode=0o700)
    harness.copy("COPY a.txt /app")
    assert harness.listing()["app/a.txt"][4] == b"A"
    assert harness.listing()["app"][1] == 0o700  # an existing destination keeps its metadata


def test_file_into_a_directory_reached_through_an_in_root_symlink(harness: Harness) -> None:
    harness.write("a.txt", "A")
    (harness.root / "real").mkdir()
    os.symlink("/real", harness.root / "link")
    harness.copy("COPY a.txt /link")
    assert harness.listing()["real/a.txt"][4] == b"A"
    assert harness.listing()["link"][0] == "symlink"


@pytest.mark.parametrize(
    ("dest", "workdir", "expected"),
    [
        (".", "/work", "work/a.txt"),
        ("./", "/work", "work/a.txt"),
        ("sub/", "/work", "work/sub/a.txt"),
        ("named", "/work", "work/named"),
        ("/abs/", "/work", "abs/a.txt"),
        ("../up/", "/work/dir", "work/up/a.txt"),
        ("/", "/work", "a.txt"),
    ],
)
def test_relative_destinations_follow_workdir(harness: Harness, dest: str, workdir: str, expected: str) -> None:
    harness.write("a.txt", "A")
    harness.copy(f"COPY a.txt {dest}", workdir)
    assert harness.listing()[expected][4] == b"A"


def test_a_file_replaces_a_file_but_not_a_directory(harness: Harness) -> None:
    harness.write("a.txt", "new")
    (harness.root / "old.txt").write_text("old")
    harness.copy("COPY a.txt /old.txt")
    assert harness.listing()["old.txt"][4] == b"new"
    (harness.root / "dir" / "a.txt").mkdir(parents=True)
    with pytest.raises(BuildError, match=r"Builderfile:2: COPY: cannot replace the directory /dir/a.txt with a file"):
        harness.copy("COPY a.txt /dir/")


def test_a_destination_symlink_is_written_through_inside_the_root(harness: Harness, tmp_path: Path) -> None:
    """BuildKit resolves the destination (fs.RootPath): the link stays, its in-root target gets the file."""
    harness.write("app.conf", "mine")
    (harness.root / "usr" / "share").mkdir(parents=True)
    (harness.root / "usr" / "share" / "default.conf").write_text("default")
    (harness.root / "etc").mkdir()
    os.symlink("../usr/share/default.conf", harness.root / "etc" / "app.conf")
    harness.copy("COPY app.conf /etc/app.conf")
    assert harness.listing()["etc/app.conf"] == ("symlink", 0, 0, "../usr/share/default.conf")
    assert harness.listing()["usr/share/default.conf"][4] == b"mine"
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    os.symlink("/../../../.." + str(outside), harness.root / "escape.conf")
    harness.copy("COPY app.conf /escape.conf")
    assert outside.read_text() == "keep"
    assert (harness.root / str(outside).lstrip("/")).read_text() == "mine"


def test_inside_a_copied_directory_symlinks_are_replaced(harness: Harness, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    harness.write("dir/f", "F")
    (harness.root / "app").mkdir()
    os.symlink(str(outside), harness.root / "app" / "f")
    harness.copy("COPY dir /app/")
    assert harness.listing()["app/f"][0] == "file"
    assert outside.read_text() == "keep"


def test_a_file_in_the_way_of_a_directory(harness: Harness) -> None:
    harness.write("a.txt", "A")
    (harness.root / "file").write_text("F")
    with pytest.raises(BuildError) as caught:
        harness.copy("COPY a.txt /file/sub/")
    assert str(caught.value) == "Builderfile:2: COPY: cannot create directory /file: a file is in the way"


# --- directories ---------------------------------------------------------------------------------------


def test_a_directory_copies_its_contents_with_metadata(harness: Harness) -> None:
    harness.write("dir/top.txt", "T", mode=0o640, mtime=1_000_000)
    harness.write("dir/sub/deep.sh", "#!/bin/sh\n", mode=0o755, mtime=2_000_000)
    (harness.context / "dir" / "sub").chmod(0o750)
    os.utime(harness.context / "dir" / "sub", (3_000_000, 3_000_000))
    os.symlink("sub/deep.sh", harness.context / "dir" / "link")
    os.chown(harness.context / "dir" / "top.txt", 1234, 5678)
    harness.copy("COPY dir /app")
    found = harness.listing()
    assert "app/dir" not in found
    assert found["app/top.txt"] == ("file", 0o640, 0, 0, b"T")  # the context's owners become 0:0
    assert found["app/sub"] == ("dir", 0o750, 0, 0)
    assert found["app/sub/deep.sh"] == ("file", 0o755, 0, 0, b"#!/bin/sh\n")
    assert found["app/link"] == ("symlink", 0, 0, "sub/deep.sh")
    assert (harness.root / "app" / "top.txt").stat().st_mtime == 1_000_000
    assert (harness.root / "app" / "sub").stat().st_mtime == 3_000_000
    assert found["app"] == ("dir", 0o755, 0, 0)


def test_extended_attributes_are_copied_and_checksummed(harness: Harness) -> None:
    path = harness.write("dir/sub/tool", "T")
    os.setxattr(path, "user.origin", b"context")
    os.setxattr(harness.context / "dir" / "sub", "user.kind", b"tree")
    first = harness.copy("COPY dir /app/").checksum()
    assert os.getxattr(harness.root / "app" / "sub" / "tool", "user.origin") == b"context"
    assert os.getxattr(harness.root / "app" / "sub", "user.kind") == b"tree"
    os.setxattr(path, "user.origin", b"changed")
    assert harness.plan("COPY dir /app/").checksum() != first


def test_file_capabilities_survive_chown(harness: Harness) -> None:
    """security.capability (cap_net_bind_service+ep, VFS_CAP_REVISION_2) is set after the chown that clears it."""
    capability = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
    path = harness.write("ping", "P", mode=0o755)
    os.setxattr(path, "security.capability", capability)
    harness.copy("COPY --chown=1000:1000 ping /bin/", owner=(1000, 1000))
    assert os.getxattr(harness.root / "bin" / "ping", "security.capability") == capability


def test_a_directory_over_a_file_is_an_error(harness: Harness) -> None:
    harness.write("dir/x", "X")
    (harness.root / "app").write_text("file")
    with pytest.raises(BuildError, match=r"Builderfile:2: COPY: cannot copy a directory to /app: it is not a directory"):
        harness.copy("COPY dir /app")


def test_existing_subdirectories_take_the_copied_metadata(harness: Harness) -> None:
    harness.write("dir/sub/x", "X")
    (harness.context / "dir" / "sub").chmod(0o711)
    (harness.root / "app" / "sub").mkdir(parents=True, mode=0o700)
    (harness.root / "app" / "sub" / "kept").write_text("K")
    harness.copy("COPY dir/ /app/")
    found = harness.listing()
    assert found["app/sub"][1] == 0o711
    assert found["app/sub/kept"][4] == b"K"
    assert found["app/sub/x"][4] == b"X"


def test_whole_context(harness: Harness) -> None:
    harness.write("a", "1")
    harness.write("d/b", "2")
    harness.copy("COPY . /src/")
    assert files(harness) == {"src/a", "src/d/b"}


def test_top_level_symlink_is_followed_inside_the_context(harness: Harness) -> None:
    harness.write("real/x", "X")
    os.symlink("real", harness.context / "link")
    os.symlink("/real/x", harness.context / "abs")  # absolute: the context is `/`
    harness.copy("COPY link abs /out/")
    found = harness.listing()
    assert found["out/x"][4] == b"X"  # the directory's contents
    assert found["out/abs"] == ("file", 0o644, 0, 0, b"X")  # named after the link, content of the target


def test_symlink_to_a_host_path_is_not_followed_out(harness: Harness) -> None:
    os.symlink("/etc/passwd", harness.context / "passwd")
    with pytest.raises(BuildError, match="Builderfile:2: COPY passwd: not in the build context"):
        harness.copy("COPY passwd /x")


# --- sources --------------------------------------------------------------------------------------------


def test_missing_source_names_the_line(harness: Harness) -> None:
    with pytest.raises(BuildError) as caught:
        harness.copy("COPY data/x /x")
    assert str(caught.value) == "Builderfile:2: COPY data/x: not in the build context"


@pytest.mark.parametrize("source", ["../x", "a/../../x", "/../etc/passwd"])
def test_outside_the_context(harness: Harness, source: str) -> None:
    with pytest.raises(BuildError, match=r"Builderfile:2: COPY .*: the path is outside the build context"):
        harness.copy(f"COPY {source} /x")


def test_absolute_source_is_relative_to_the_context(harness: Harness) -> None:
    harness.write("a.txt", "A")
    harness.copy("COPY /a.txt /b.txt")
    assert harness.listing()["b.txt"][4] == b"A"


def test_one_wildcard_match_may_name_a_file(harness: Harness) -> None:
    harness.write("only.txt", "O")
    harness.write("other.md", "M")
    harness.copy("COPY *.txt /renamed")
    assert harness.listing()["renamed"][4] == b"O"


def test_several_matches_need_a_slash(harness: Harness) -> None:
    harness.write("a.txt", "A")
    harness.write("b.txt", "B")
    with pytest.raises(BuildError) as caught:
        harness.copy("COPY *.txt /dest")
    assert str(caught.value) == MULTI
    harness.copy("COPY *.txt /dest/")
    assert files(harness) == {"dest/a.txt", "dest/b.txt"}


def test_several_arguments_need_a_slash_or_dot(harness: Harness) -> None:
    harness.write("a.txt", "A")
    harness.write("b.txt", "B")
    with pytest.raises(BuildError) as caught:
        harness.copy("COPY a.txt b.txt /dest")
    assert str(caught.value) == MULTI
    harness.copy("COPY a.txt b.txt .", "/w")
    assert files(harness) == {"w/a.txt", "w/b.txt"}


def test_wildcard_forms(harness: Harness) -> None:
    for name in ("a1.txt", "b2.txt", "c3.txt", ".hidden", "dir1/x", "dir2/y", "sub/deep/z.txt"):
        harness.write(name, name)
    harness.copy("COPY [ab]?.txt /one/")
    harness.copy("COPY [^a-b]*.txt /two/")
    harness.copy("COPY .h* /three/")
    harness.copy("COPY dir* /four/")  # matched directories copy their contents
    harness.copy("COPY sub/*/z.txt /five/")
    assert files(harness) == {
        "one/a1.txt", "one/b2.txt", "two/c3.txt", "three/.hidden", "four/x", "four/y", "five/z.txt",
    }


def test_a_wildcard_matching_nothing(harness: Harness) -> None:
    harness.write("package.json", "{}")
    harness.copy("COPY package.json yarn.lock* /app/")  # the optional-file idiom: fine with another source
    assert files(harness) == {"app/package.json"}
    with pytest.raises(BuildError, match=r"Builderfile:2: COPY \*.nothing: no source files were specified"):
        harness.copy("COPY *.nothing /app/")


def test_bad_wildcard(harness: Harness) -> None:
    with pytest.raises(BuildError, match=r"Builderfile:2: COPY a\[: bad wildcard pattern"):
        harness.copy("COPY a[ /x/")


def test_exclude(harness: Harness) -> None:
    for name in ("dir/keep.txt", "dir/drop.log", "dir/sub/also.log", "dir/sub/keep.md", "dir/logs/x", "dir/logs/important"):
        harness.write(name)
    harness.copy("COPY --exclude=*.log --exclude=**/*.log --exclude=logs --exclude=!logs/important dir /app/")
    assert files(harness) == {"app/keep.txt", "app/sub/keep.md", "app/logs/important"}


def test_parents(harness: Harness) -> None:
    harness.write("a/b/c.txt", "C")
    harness.write("x/pkg.json", "1")
    harness.write("y/pkg.json", "2")
    harness.write("y/other", "3")
    (harness.context / "a" / "b").chmod(0o700)
    harness.copy("COPY --parents a/b/c.txt */pkg.json /dst")
    assert files(harness) == {"dst/a/b/c.txt", "dst/x/pkg.json", "dst/y/pkg.json"}
    assert harness.listing()["dst/a/b"][1] == 0o700  # kept directories carry the context's metadata


def test_parents_of_the_whole_context(harness: Harness) -> None:
    harness.write("a/b", "B")
    harness.copy("COPY --parents . /dst/")
    assert files(harness) == {"dst/a/b"}


def test_exclude_drops_wildcard_matches_too(harness: Harness) -> None:
    for name in ("home.md", "home.txt", "homework/notes.txt", "homework/plan.md"):
        harness.write(name)
    harness.copy("COPY --exclude=*.txt hom* /mydir/")
    assert files(harness) == {"mydir/home.md", "mydir/plan.md"}


def test_parents_with_a_pivot(harness: Harness) -> None:
    harness.write("src/app/lib/mod.py", "M")
    harness.copy("COPY --parents src/./app/lib /dst/")
    assert files(harness) == {"dst/app/lib/mod.py"}


def test_no_context(tmp_path: Path) -> None:
    """`imagekit build -`: COPY from the context fails, a heredoc needs no context."""
    context = BuildContext(None, None)
    with pytest.raises(BuildError, match="Builderfile:2: COPY a: there is no build context"):
        plan_copy(instruction("COPY a /a"), context, "/", file="Builderfile")
    plan = plan_copy(instruction("COPY <<EOF /a\nA\nEOF\n"), context, "/", file="Builderfile")
    apply(str(tmp_path), plan, None)
    assert (tmp_path / "a").read_text() == "A\n"


def test_copy_from_a_stage_keeps_owners(harness: Harness, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    harness.write("out/bin", "B", where=stage, mode=0o755)
    os.chown(stage / "out" / "bin", 1000, 1000)
    harness.copy("COPY --from=builder /out/bin /usr/local/bin/", stage_root=stage)
    assert harness.listing()["usr/local/bin/bin"] == ("file", 0o755, 1000, 1000, b"B")
    with pytest.raises(BuildError, match="Builderfile:2: COPY /nope: not in --from=builder"):
        harness.copy("COPY --from=builder /nope /x", stage_root=stage)


# --- flags -----------------------------------------------------------------------------------------------


def test_chown_numeric_covers_copied_and_created(harness: Harness) -> None:
    harness.write("dir/sub/f", "F")
    harness.copy("COPY --chown=1000:1001 dir /new/place/", owner=(1000, 1001))
    found = harness.listing()
    for path in ("new", "new/place", "new/place/sub", "new/place/sub/f"):
        assert found[path][2:4] == (1000, 1001), path


def test_chown_by_name_through_the_image_passwd(harness: Harness) -> None:
    harness.write("f", "F")
    harness.write("etc/passwd", "app:x:1000:1001::/home/app:/bin/sh\n", where=harness.root)
    harness.write("etc/group", "app:x:1001:\n", where=harness.root)
    plan = harness.plan("COPY --chown=app f /home/app/")
    apply(str(harness.root), plan, owner_for(str(harness.root), plan))
    assert harness.listing()["home/app/f"][2:4] == (1000, 1001)
    assert harness.listing()["home/app"][2:4] == (1000, 1001)
    assert owner_for(str(harness.root), harness.plan("COPY f /g")) is None
    with pytest.raises(BuildError) as caught:
        owner_for(str(harness.root), harness.plan("COPY --chown=ghost f /g"))
    assert str(caught.value) == "Builderfile:2: COPY --chown=ghost: unable to find user ghost: no matching entries in passwd file"


def test_chown_is_in_the_checksum(harness: Harness) -> None:
    harness.write("f", "F")
    assert harness.plan("COPY --chown=1 f /f").checksum() != harness.plan("COPY f /f").checksum()


def test_chmod_applies_to_files_and_directories(harness: Harness) -> None:
    harness.write("dir/f", "F", mode=0o644)
    harness.write("dir/sub/g", "G", mode=0o600)
    os.symlink("f", harness.context / "dir" / "l")
    harness.copy("COPY --chmod=0750 dir /app/")
    found = harness.listing()
    assert found["app/f"][1] == 0o750
    assert found["app/sub"][1] == 0o750
    assert found["app/sub/g"][1] == 0o750
    assert found["app"][1] == 0o755  # created for the copy, not copied
    assert found["app/l"][0] == "symlink"


def test_symbolic_chmod_is_refused_by_the_plan(harness: Harness) -> None:
    harness.write("f")
    with pytest.raises(BuildError) as caught:
        harness.copy("COPY --chmod=u+x f /f")
    assert str(caught.value) == "Builderfile:2: invalid chmod parameter: 'u+x'. it should be octal string and between 0 and 07777"


@pytest.mark.parametrize("mode", ["999", "17777", "-1"])
def test_bad_chmod_is_refused_by_the_parser(mode: str) -> None:
    with pytest.raises(BuilderfileError) as caught:
        instruction(f"COPY --chmod={mode} f /f")
    assert caught.value.line == 2 and mode in caught.value.message


def test_history_words(harness: Harness) -> None:
    harness.write("a")
    plan = harness.plan("COPY --parents --chown=1:2 --chmod=600 a <<EOF /d/\nx\nEOF\n")
    assert plan.history() == ["COPY", "--parents", "--chown=1:2", "--chmod=600", "a", "<<EOF", "/d/"]
    assert plan.owner_spec == "1:2"


def test_link_copies_as_usual(harness: Harness) -> None:
    harness.write("f", "F")
    harness.copy("COPY --link f /g")
    assert harness.listing()["g"][4] == b"F"


def test_heredoc_files(harness: Harness) -> None:
    harness.copy("COPY <<EOF <<OTHER /etc/conf/\nhello\nEOF\nsecond\nOTHER\n")
    found = harness.listing()
    assert found["etc/conf/EOF"] == ("file", 0o644, 0, 0, b"hello\n")
    assert found["etc/conf/OTHER"] == ("file", 0o644, 0, 0, b"second\n")
    harness.copy("COPY --chmod=755 <<EOF /run.sh\n#!/bin/sh\nEOF\n")
    assert harness.listing()["run.sh"] == ("file", 0o755, 0, 0, b"#!/bin/sh\n")


def test_heredoc_content_is_in_the_checksum(harness: Harness) -> None:
    one = harness.plan("COPY <<EOF /f\none\nEOF\n").checksum()
    assert one == harness.plan("COPY <<EOF /f\none\nEOF\n").checksum()
    assert one != harness.plan("COPY <<EOF /f\ntwo\nEOF\n").checksum()


# --- the root is untrusted ----------------------------------------------------------------------------------


def test_symlink_escape_in_the_destination(harness: Harness, tmp_path: Path) -> None:
    """`evil -> /../../../OUTSIDE` in the image means ROOT/OUTSIDE: the host directory stays empty."""
    outside = tmp_path / "outside"
    outside.mkdir()
    harness.write("f", "F")
    os.symlink("/../../../.." + str(outside), harness.root / "evil")
    harness.copy("COPY f /evil/")
    assert list(outside.iterdir()) == []
    landed = harness.root / str(outside).lstrip("/") / "f"
    assert landed.read_text() == "F"


def test_symlinked_parent_directories_resolve_inside_the_root(harness: Harness, tmp_path: Path) -> None:
    outside = tmp_path / "host-etc"
    outside.mkdir()
    (outside / "passwd").write_text("host")
    (harness.root / "etc").mkdir()
    os.symlink(str(outside), harness.root / "link")  # absolute host path: inside the root it is ROOT/<path>
    harness.write("passwd", "image")
    harness.copy("COPY passwd /link/passwd")
    assert (outside / "passwd").read_text() == "host"
    assert (harness.root / str(outside).lstrip("/") / "passwd").read_text() == "image"


def test_copied_directory_never_enters_an_image_symlink(harness: Harness, tmp_path: Path) -> None:
    """A copied `sub/` meeting the image's `sub -> /host-etc` is an error (fsutil's), not a write through it."""
    target = tmp_path / "host-etc"
    target.mkdir()
    (harness.root / "app").mkdir()
    os.symlink(str(target), harness.root / "app" / "sub")
    harness.write("dir/sub/passwd", "evil")
    with pytest.raises(BuildError, match="Builderfile:2: COPY: cannot copy to non-directory: /app/sub"):
        harness.copy("COPY dir /app/")
    assert list(target.iterdir()) == []
    assert not (harness.root / str(target).lstrip("/")).exists()


def test_a_missing_root_is_a_build_error(harness: Harness, tmp_path: Path) -> None:
    harness.write("f")
    with pytest.raises(BuildError, match="Builderfile:2: COPY to /f: .*No such file or directory"):
        apply(str(tmp_path / "no-root"), harness.plan("COPY f /f"), None)


def test_apply_takes_a_pickled_plan(harness: Harness) -> None:
    import pickle

    harness.write("d/f", "F")
    plan = pickle.loads(pickle.dumps(harness.plan("COPY d /x/")))
    apply(str(harness.root), plan, None)
    assert files(harness) == {"x/f"}
