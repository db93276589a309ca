"""What docker users reach for, through the real entry point: rmi and inspect past a missing name,
`images --filter/--format`, `inspect --format`, the `image` command group, and docker's messages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.store.conftest import Run, ok, one_line_error


@pytest.fixture
def three(root: Path, imagekit: Run, busybox_tar: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Three images created at known times: old:1, mid:1 (labelled) and new:1 (also tagged new:2)."""
    ids = {}
    for epoch, name, changes in (("1600000000", "old:1", ()), ("1650000000", "mid:1", ("LABEL team=a tier=db",)), ("1700000000", "new:1", ())):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        args = [a for change in changes for a in ("-c", change)]
        ids[name] = ok(imagekit("import", *args, str(busybox_tar), name)).strip()
    ok(imagekit("tag", "new:1", "localhost:5000/new:2"))
    return ids


def _names(imagekit: Run, *args: str) -> list[str]:
    return ok(imagekit("images", "--format", "{{.Repository}}:{{.Tag}}", *args)).splitlines()


def test_images_filters(three: dict[str, str], imagekit: Run) -> None:
    assert _names(imagekit, "-f", "reference=new") == ["new:1"]
    assert _names(imagekit, "-f", "reference=*:1") == ["new:1", "mid:1", "old:1"]
    assert _names(imagekit, "-f", "reference=localhost:5000/*") == ["localhost:5000/new:2"]
    assert _names(imagekit, "-f", "reference=old", "-f", "reference=mid") == ["mid:1", "old:1"]
    assert _names(imagekit, "-f", "before=mid:1") == ["old:1"]
    assert _names(imagekit, "-f", "since=mid:1") == ["new:1", "localhost:5000/new:2"]
    assert _names(imagekit, "-f", "since=old:1", "-f", "before=new:1") == ["mid:1"]
    assert _names(imagekit, "-f", "label=team") == ["mid:1"]
    assert _names(imagekit, "-f", "label=team=a", "-f", "label=team=b") == ["mid:1"]
    assert _names(imagekit, "-f", "label=team=b") == []
    assert _names(imagekit, "-f", "dangling=true") == []
    assert len(_names(imagekit, "-a", "--filter", "dangling=false")) == 4
    assert "invalid filter 'colour=red'" in ok_error(imagekit("images", "-f", "colour=red"))


def ok_error(result: subprocess.CompletedProcess[str]) -> str:
    """stderr of a usage error (exit 2)."""
    assert result.returncode == 2 and "Traceback" not in result.stderr
    return result.stderr


def test_images_format_table_and_template(three: dict[str, str], imagekit: Run) -> None:
    lines = ok(imagekit("images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}", "-f", "reference=*:1")).splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID"] and lines[0].index("TAG") == 13
    assert [line.split() for line in lines[1:]] == [[n, "1", three[f"{n}:1"][7:19]] for n in ("new", "mid", "old")]
    created = ok(imagekit("images", "--format", "{{.CreatedAt}}", "old"))
    assert created == "2020-09-13 12:26:40 +0000 UTC\n"
    line = one_line_error(imagekit("images", "--format", "{{.Tag"))
    assert line == "imagekit: template: unclosed action"


def test_inspect_format(three: dict[str, str], imagekit: Run) -> None:
    assert ok(imagekit("inspect", "-f", "{{.Id}}", "old:1", "mid:1")) == f"{three['old:1']}\n{three['mid:1']}\n"
    assert ok(imagekit("inspect", "--format", '{{index .Config.Labels "tier"}}', "mid:1")) == "db\n"
    assert ok(imagekit("inspect", "-f", "{{json .Config}}", "mid:1")) == '{"Labels":{"team":"a","tier":"db"}}\n'
    assert ok(imagekit("inspect", "-f", "{{.Config.Labels}}", "mid:1")) == "map[team:a tier:db]\n"
    assert ok(imagekit("inspect", "-f", "{{range .RepoTags}}{{.}} {{end}}", "new:1")) == "new:1 localhost:5000/new:2 \n"
    assert ok(imagekit("inspect", "-f", "{{if .Config.Labels}}labelled{{else}}plain{{end}}", "old:1")) == "plain\n"
    assert ok(imagekit("inspect", "-f", "{{.Config.Env}}", "old:1")) == "<no value>\n"


def test_inspect_and_rmi_go_past_a_missing_name(three: dict[str, str], root: Path, imagekit: Run) -> None:
    done = imagekit("image", "inspect", "old:1", "nothere", "mid:1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert [i["Id"] for i in json.loads(done.stdout)] == [three["old:1"], three["mid:1"]]
    assert done.stderr == f"imagekit: no image 'nothere:latest' in the store at {root}\n"
    done = imagekit("rmi", "old:1", "nothere", "mid:1")
    assert done.returncode == 1 and done.stderr == f"imagekit: no image 'nothere:latest' in the store at {root}\n"
    assert done.stdout.startswith("Untagged: old:1\nUntagged: mid:1\nDeleted: sha256:")
    assert len([line for line in done.stdout.splitlines() if line.startswith("Deleted: ")]) == 4  # two configs, two manifests; the layer is new:1's too
    assert _names(imagekit) == ["new:1", "localhost:5000/new:2"]


def test_messages_name_images_as_images_shows_them(three: dict[str, str], root: Path, imagekit: Run) -> None:
    ok(imagekit("tag", "old:1", "mybusybox:1"))
    assert one_line_error(imagekit("tag", "mybusybox", "x")) == f"imagekit: no image 'mybusybox:latest' in the store at {root}"
    assert ok(imagekit("rmi", "--no-prune", "docker.io/library/mybusybox:1")) == "Untagged: mybusybox:1\n"


def test_image_command_group(three: dict[str, str], imagekit: Run) -> None:
    assert ok(imagekit("image", "ls", "-q", "old")) == three["old:1"][7:19] + "\n"
    ok(imagekit("image", "tag", "old:1", "again:1"))
    assert json.loads(ok(imagekit("image", "inspect", "again:1")))[0]["Id"] == three["old:1"]
    assert ok(imagekit("image", "rm", "again:1")) == "Untagged: again:1\n"
    assert ok(imagekit("image", "prune", "-f")) == "Total reclaimed space: 0B\n"
    assert "Download an image from a registry" in ok(imagekit("image", "pull", "--help"))
    assert "Upload an image from the store" in ok(imagekit("image", "push", "--help"))


def test_prune_asks_a_person_at_a_terminal(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    import os
    import pty
    import subprocess

    from tests.store.conftest import IMAGEKIT

    image_id = ok(imagekit("import", "-q", str(busybox_tar))).strip()
    for answer, kept in ((b"n\n", True), (b"y\n", False)):
        master, slave = pty.openpty()
        child = subprocess.Popen([IMAGEKIT, "--root", str(root), "prune"], stdin=slave, stderr=slave, stdout=subprocess.PIPE)
        os.close(slave)
        seen = b""
        while b"continue?" not in seen:
            seen += os.read(master, 1024)
        os.write(master, answer)
        child.communicate(timeout=60)
        os.close(master)
        assert (ok(imagekit("images", "-q")) == image_id[7:19] + "\n") == kept
