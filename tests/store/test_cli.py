"""The store commands' output, through the real entry point: docker's columns and formats."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from imagekit.cli import main
from imagekit.cli.store import human_since, human_size


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> str:
    try:
        main(["--root", str(root), *args])
    except SystemExit as exit_:
        assert exit_.code in (0, None), capsys.readouterr().err
    return capsys.readouterr().out


@pytest.fixture
def populated(tmp_path: Path, busybox_tar: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "store"
    run(capsys, root, "import", "-c", "CMD [\"sh\"]", str(busybox_tar), "demo/busybox:latest")
    run(capsys, root, "tag", "demo/busybox", "localhost:5000/team/bb:v1")
    return root


def test_images_table(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = run(capsys, populated, "images").splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[0].index("TAG") == len("localhost:5000/team/bb") + 3
    rows = [line.split() for line in lines[1:]]
    assert [r[:2] for r in rows] == [["demo/busybox", "latest"], ["localhost:5000/team/bb", "v1"]]
    assert rows[0][2] == rows[1][2] and len(rows[0][2]) == 12
    assert lines[1].endswith("MB") and "ago" in lines[1]


def test_images_options(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = run(capsys, populated, "images", "-q").split()
    assert len(ids) == 1 and len(ids[0]) == 12
    assert run(capsys, populated, "images", "-q", "--no-trunc").split()[0].startswith("sha256:")
    digests = run(capsys, populated, "images", "--digests").splitlines()
    assert "DIGEST" in digests[0] and "sha256:" in digests[1]
    rows = [json.loads(line) for line in run(capsys, populated, "images", "--format", "json").splitlines()]
    assert [(r["Repository"], r["Tag"]) for r in rows] == [("demo/busybox", "latest"), ("localhost:5000/team/bb", "v1")]
    filtered = run(capsys, populated, "images", "localhost:5000/team/bb").splitlines()
    assert len(filtered) == 2 and "localhost:5000/team/bb" in filtered[1]
    assert len(run(capsys, populated, "images", "demo/busybox:nope").splitlines()) == 1


def test_inspect_fields(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [info] = json.loads(run(capsys, populated, "inspect", "demo/busybox"))
    assert info["RepoTags"] == ["demo/busybox:latest", "localhost:5000/team/bb:v1"]
    assert info["RepoDigests"] == sorted(f"{r}@{info['Digest']}" for r in ("demo/busybox", "localhost:5000/team/bb"))
    assert info["Config"] == {"Cmd": ["sh"]}
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    assert info["Manifest"]["config"]["digest"] == info["Id"]
    assert info["Size"] > 1000
    both = json.loads(run(capsys, populated, "inspect", info["Id"][7:19], "localhost:5000/team/bb:v1"))
    assert [b["Id"] for b in both] == [info["Id"]] * 2


def test_rmi_untags_then_prunes(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, populated, "rmi", "demo/busybox")
    assert out == "Untagged: demo/busybox:latest\n"  # still tagged elsewhere: nothing to delete
    out = run(capsys, populated, "rmi", "localhost:5000/team/bb:v1").splitlines()
    assert out[0] == "Untagged: localhost:5000/team/bb:v1" and len([o for o in out if o.startswith("Deleted: sha256:")]) == 3
    assert list((populated / "blobs" / "sha256").iterdir()) == []


def test_rmi_no_prune_then_prune(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, populated, "rmi", "--no-prune", "demo/busybox", "localhost:5000/team/bb:v1")
    assert len(list((populated / "blobs" / "sha256").iterdir())) == 3
    out = run(capsys, populated, "prune").splitlines()
    assert len(out) == 4 and out[-1].startswith("Total reclaimed space: ") and out[-1].endswith("MB")


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (4_260_000, "4.26MB"), (1_500_000_000, "1.5GB"), (12_345, "12.3kB")],
)
def test_human_size_is_dockers(size: int, text: str) -> None:
    assert human_size(size) == text


NOW = dt.datetime(2026, 1, 31, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (dt.timedelta(0), "Less than a second ago"),
        (dt.timedelta(seconds=1), "1 second ago"),
        (dt.timedelta(seconds=30), "30 seconds ago"),
        (dt.timedelta(seconds=90), "About a minute ago"),
        (dt.timedelta(minutes=59), "59 minutes ago"),
        (dt.timedelta(minutes=61), "About an hour ago"),
        (dt.timedelta(hours=5), "5 hours ago"),
        (dt.timedelta(days=3), "3 days ago"),
        (dt.timedelta(days=20), "2 weeks ago"),
        (dt.timedelta(days=90), "3 months ago"),
        (dt.timedelta(days=800), "2 years ago"),
    ],
)
def test_human_since_is_dockers(delta: dt.timedelta, text: str) -> None:
    assert human_since((NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ"), now=NOW) == text


def test_human_since_without_a_time() -> None:
    assert human_since("") == "N/A" and human_since("yesterday") == "N/A"


def test_images_newest_first(tmp_path: Path, busybox_tar: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    for epoch, name in (("1600000000", "old:1"), ("1700000000", "new:1"), ("1650000000", "mid:1")):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        run(capsys, root, "import", str(busybox_tar), name)
    rows = [line.split()[0] for line in run(capsys, root, "images").splitlines()[1:]]
    assert rows == ["new", "mid", "old"]


def test_inspect_and_images_of_a_multi_platform_ref(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A name on an image index: the listing and inspect show the host's image, the repo digest is the index's."""
    from imagekit.layout import Layout
    from imagekit.oci import OCI_INDEX, Descriptor, Index
    from imagekit.platforms import host

    layout = Layout(populated)
    manifest = layout.resolve("docker.io/demo/busybox:latest")
    index = Index((Descriptor(manifest.media_type, manifest.digest, manifest.size, platform=host()),)).to_bytes()
    index_digest = layout.write_bytes(index)
    layout.set_ref("docker.io/demo/multi:1", Descriptor(OCI_INDEX, index_digest, len(index)))
    [info] = json.loads(run(capsys, populated, "inspect", "demo/multi:1"))
    assert info["RepoDigests"] == [f"demo/multi@{index_digest}"]
    assert info["Digest"] == str(manifest.digest) and info["RootFS"]["Layers"]
    row = next(json.loads(line) for line in run(capsys, populated, "images", "--format", "json").splitlines() if "multi" in line)
    assert row["Digest"] == str(index_digest) and row["Tag"] == "1"
