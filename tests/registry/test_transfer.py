"""Push and pull round trips through the real `imagekit` entry point and a real registry."""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.layout import Layout
from imagekit.oci import DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, Descriptor, Index, Platform
from imagekit.origins import BlobOrigins
from imagekit.platforms import normalize
from imagekit.progress import LineProgress, TtyProgress, reporter
from imagekit.registry.client import Repository
from imagekit.registry.transfer import download, pull, push
from imagekit.registry.transport import Transport
from tests.registry.auth_servers import AuthRegistry
from tests.registry.cli import assert_one_line_error, run_cli
from tests.registry.fault_proxy import FaultProxy
from tests.registry.images import build_image, random_layer
from tests.registry.registry_server import RegistryServer


def new_name(host: str) -> str:
    return f"{host}/test/{uuid.uuid4().hex[:12]}"


def stored_blobs(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir()}


def test_push_then_pull_round_trip_through_the_cli(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    src_root, dst_root = tmp_path / "a", tmp_path / "b"
    image = build_image(Layout(src_root), "local/app:1", [random_layer(300_000), random_layer(5000)])
    dest = new_name(open_registry.host) + ":v1"
    code, out, err = run_cli(capsys, "--root", str(src_root), "push", "local/app:1", dest)
    assert code == 0, err
    assert out.strip() == str(image.digest)
    assert err.count("Pushing") == 2 and err.count("Pushed") == 2  # the layers; the config is no layer

    code, out, err = run_cli(capsys, "--root", str(dst_root), "pull", dest)
    assert code == 0, err
    assert out.strip() == dest
    assert f"Digest: {image.digest}" in err and err.count("Pull complete") == 2
    pulled = Layout(dst_root).image(dest)
    assert pulled.manifest_bytes == image.manifest_bytes and pulled.config_bytes == image.config_bytes
    assert stored_blobs(dst_root) == stored_blobs(src_root)

    code, out, err = run_cli(capsys, "--root", str(dst_root), "pull", "-q", "--digestfile", str(tmp_path / "digest"), dest)
    assert (code, out, err) == (0, dest + "\n", "")  # docker's -q prints the reference
    assert (tmp_path / "digest").read_text() == str(image.digest)


def test_pull_and_push_say_what_docker_says(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst, digestfile = tmp_path / "src", tmp_path / "dst", tmp_path / "digests"
    image = build_image(Layout(src), "local/app:1", [random_layer(1000), random_layer(2000)])
    name = new_name(open_registry.host)
    code, _, err = run_cli(capsys, "--root", str(src), "push", "local/app:1", f"{name}:v1")
    assert code == 0 and err.splitlines()[0] == f"The push refers to repository [{name}]", err
    assert err.count("Waiting") == 2 and err.count("Pushed") == 2
    assert run_cli(capsys, "--root", str(src), "push", "-q", "local/app:1", f"{name}:v2")[0] == 0
    code, out, err = run_cli(capsys, "--root", str(dst), "pull", f"{name}:v1")
    assert (code, out) == (0, f"{name}:v1\n") and err.splitlines()[-1] == f"Status: Downloaded newer image for {name}:v1", err
    assert err.count("Waiting") == 2 and err.count("Pull complete") == 2
    code, out, err = run_cli(capsys, "--root", str(dst), "pull", f"{name}:v1")
    assert err.splitlines()[-1] == f"Status: Image is up to date for {name}:v1" and "Downloading" not in err
    code, out, err = run_cli(capsys, "--root", str(dst), "pull", "--all-tags", "--digestfile", str(digestfile), name)
    assert (code, out) == (0, f"{name}\n"), err
    assert err.count("Pulling from") == 2 and err.splitlines()[-1] == f"Status: Downloaded newer image for {name}"  # v2 is new here
    assert digestfile.read_text() == f"{image.digest}\n{image.digest}\n"
    assert {r for r, _ in Layout(dst).refs()} == {f"{name}:v1", f"{name}:v2"}
    code, _, err = run_cli(capsys, "--root", str(dst), "pull", "-a", f"{name}:v1")
    assert code == 2 and "a tag or digest cannot be used with --all-tags/-a" in err


def test_a_port_out_of_range_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "pull", "localhost:99999/a:1")
    assert_one_line_error(code, err)
    assert err == "imagekit: invalid registry address 'localhost:99999': the port must be a number from 1 to 65535\n"


def test_push_by_id_needs_a_destination(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = build_image(Layout(tmp_path), "local/app:1", [random_layer(100)])
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "push", image.manifest.config.digest.hex[:12])
    assert_one_line_error(code, err)
    assert "is not a name of the image it found: give DEST to push an image found by ID" in err


def test_second_pull_and_push_skip_present_blobs(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    build_image(Layout(root), "local/app:1", [random_layer(1000)])
    dest = new_name(open_registry.host) + ":v1"
    assert run_cli(capsys, "--root", str(root), "push", "local/app:1", dest)[0] == 0
    code, _, err = run_cli(capsys, "--root", str(root), "push", "local/app:1", dest)
    assert code == 0 and err.count("Layer already exists") == 1 and "Pushing" not in err
    code, _, err = run_cli(capsys, "--root", str(root), "pull", dest)
    assert code == 0 and err.count("Already exists") == 1 and "Downloading" not in err


def test_pull_by_digest_pins_content(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    layout = Layout(tmp_path / "src")
    name = new_name(open_registry.host)
    first = build_image(layout, "one", [random_layer(2000)])
    second = build_image(layout, "two", [random_layer(2000)])
    assert run_cli(capsys, "--root", str(layout.root), "push", "one", f"{name}:moving")[0] == 0
    assert run_cli(capsys, "--root", str(layout.root), "push", "two", f"{name}:moving")[0] == 0
    dst = tmp_path / "dst"
    digestfile = str(tmp_path / "digest")
    code, out, _ = run_cli(capsys, "--root", str(dst), "pull", "-q", "--digestfile", digestfile, f"{name}@{first.digest}")
    assert code == 0 and out.strip() == f"{name}@{first.digest}" and Path(digestfile).read_text() == str(first.digest)
    assert Layout(dst).image(f"{name}@{first.digest}").manifest_bytes == first.manifest_bytes
    code, out, _ = run_cli(capsys, "--root", str(dst), "pull", "-q", "--digestfile", digestfile, f"{name}:moving")
    assert Path(digestfile).read_text() == str(second.digest)


def test_push_by_digest_without_a_tag(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    image = build_image(Layout(tmp_path), "app", [random_layer(100)])
    name = new_name(open_registry.host)
    code, out, err = run_cli(capsys, "--root", str(tmp_path), "push", "-q", "app", f"{name}@{image.digest}")
    assert code == 0 and out.strip() == str(image.digest), err
    repo = Repository(Transport(open_registry.host), name.split("/", 1)[1])
    assert repo.get_manifest(str(image.digest)).data == image.manifest_bytes
    assert repo.head_manifest("latest") is None
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "push", "app", f"{name}@sha256:{'1' * 64}")
    assert_one_line_error(code, err)
    assert "digest" in err


def _push_multi_arch(layout: Layout, repo: Repository, index_type: str = OCI_INDEX) -> dict[str, Digest]:
    """Pushes amd64, arm64/v8, arm/v7 images by digest plus an attestation entry, and an index as `multi`."""
    platforms = {"amd64": Platform("linux", "amd64"), "arm64": Platform("linux", "arm64", "v8"), "arm": Platform("linux", "arm", "v7")}
    entries, digests = [], {}
    for arch, platform in platforms.items():
        image = build_image(layout, arch, [random_layer(1000)], architecture=platform.architecture, variant=platform.variant)
        digests[arch] = push(image, repo)
        entries.append(Descriptor(OCI_MANIFEST, image.digest, len(image.manifest_bytes), platform=platform))
        if arch == "amd64":
            # An attestation manifest, as BuildKit adds: never to be chosen even though it comes first for arm64.
            attestation = build_image(layout, "att", [random_layer(100)], architecture="unknown")
            push(attestation, repo)
            entries.insert(0, Descriptor(OCI_MANIFEST, attestation.digest, len(attestation.manifest_bytes), platform=Platform("unknown", "unknown")))
    digests["index"] = repo.put_manifest("multi", Index(tuple(entries), media_type=index_type).to_bytes(), index_type)
    return digests


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [("linux/aarch64", "arm64"), ("linux/arm64", "arm64"), ("linux/arm64/v8", "arm64"), ("linux/arm", "arm"), ("linux/x86_64", "amd64")],
)
def test_platform_selection_from_an_index(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str], wanted: str, expected: str) -> None:
    name = new_name(open_registry.host)
    digests = _push_multi_arch(Layout(tmp_path / "src"), Repository(Transport(open_registry.host), name.split("/", 1)[1]))
    root = tmp_path / "dst"
    code, out, err = run_cli(capsys, "--root", str(root), "pull", "--platform", wanted, f"{name}:multi")
    assert code == 0, err
    assert f"Digest: {digests['index']}" in err
    assert Layout(root).image(f"{name}:multi").digest == digests[expected]


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_default_platform_is_the_host_and_missing_platform_is_an_error(
    tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str], index_type: str
) -> None:
    name = new_name(open_registry.host)
    digests = _push_multi_arch(Layout(tmp_path / "src"), Repository(Transport(open_registry.host), name.split("/", 1)[1]), index_type)
    pulled = pull(Repository(Transport(open_registry.host), name.split("/", 1)[1]), f"{digests['index']}")
    assert pulled.image.config["architecture"] == normalize("linux", __import__("platform").machine())[1]
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "dst"), "pull", "--platform", "linux/s390x", f"{name}:multi")
    assert_one_line_error(code, err)
    assert "linux/s390x" in err and "linux/arm/v7" in err and "unknown" not in err


@pytest.mark.parametrize("bad", ["linux", "linux/", "a/b/c/d"])
def test_bad_platform_flag_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "pull", "--platform", bad, "127.0.0.1:1/x:y")
    assert_one_line_error(code, err)
    assert "invalid platform" in err


def test_push_mounts_blobs_pulled_from_another_repository(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    first = new_name(open_registry.host) + ":v1"
    build_image(Layout(tmp_path / "src"), "app", [random_layer(50_000)])
    assert run_cli(capsys, "--root", str(tmp_path / "src"), "push", "app", first)[0] == 0
    root = tmp_path / "dst"
    assert run_cli(capsys, "--root", str(root), "pull", first)[0] == 0
    image = Layout(root).image(first)
    repo_a = first.split("/", 1)[1].split(":")[0]
    assert BlobOrigins(root).on_registry([image.manifest.layers[0].digest], open_registry.host) == {image.manifest.layers[0].digest: [repo_a]}
    second = new_name(open_registry.host) + ":v1"
    code, out, err = run_cli(capsys, "--root", str(root), "push", first, second)
    assert code == 0, err
    assert err.count(f"Mounted from {repo_a}") == 1 and "Pushing" not in err  # the layer (the config is not shown)
    assert out.strip() == str(image.digest)
    repo_b = Repository(Transport(open_registry.host), second.split("/", 1)[1].split(":")[0])
    assert repo_b.blob_size(image.manifest.layers[0].digest) == image.manifest.layers[0].size


def test_chunked_push_of_a_large_layer(tmp_path: Path, open_registry: RegistryServer, fault_proxy: FaultProxy) -> None:
    image = build_image(Layout(tmp_path / "src"), "big", [random_layer(3_000_000)])
    repo = Repository(Transport(fault_proxy.host), f"test/{uuid.uuid4().hex[:12]}")
    assert push(image, repo, "v1", chunk_size=1 << 20) == image.digest
    assert sum(1 for m, _, _ in fault_proxy.requests if m == "PATCH") == 3
    pulled = pull(repo, "v1")
    sink = Layout(tmp_path / "dst")
    assert set(download(pulled.image, sink)) == {d.digest for d in image.blobs()}
    with sink.open_blob(image.manifest.layers[0].digest) as got, Layout(tmp_path / "src").open_blob(image.manifest.layers[0].digest) as want:
        assert got.read() == want.read()


def test_tags_and_manifest_inspect(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    name = new_name(open_registry.host)
    image = build_image(Layout(tmp_path), "app", [random_layer(100)])
    for tag in ("v1", "v2"):
        assert run_cli(capsys, "--root", str(tmp_path), "push", "-q", "app", f"{name}:{tag}")[0] == 0
    code, out, _ = run_cli(capsys, "--root", str(tmp_path), "tags", name)
    assert code == 0 and sorted(out.split()) == ["v1", "v2"]
    code, out, _ = run_cli(capsys, "--root", str(tmp_path), "manifest", "inspect", f"{name}:v1")
    assert code == 0 and json.loads(out) == json.loads(image.manifest_bytes)


@pytest.mark.parametrize(
    "args",
    [["pull", "{host}/test/absent:v1"], ["manifest", "inspect", "{host}/test/absent:v1"], ["push", "local/absent:1", "{host}/x/y:z"], ["pull", "Bad Ref"]],
)
def test_failures_are_one_line(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run_cli(capsys, "--root", str(tmp_path), *[a.format(host=open_registry.host) for a in args])
    assert_one_line_error(code, err)
    assert out == ""


def test_unreachable_registry_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "pull", "127.0.0.1:9/x:y")
    assert_one_line_error(code, err)
    assert "cannot reach" in err


def test_progress_reporters() -> None:
    lines = io.StringIO()
    plain = LineProgress(lines)
    plain.start("abc", 2_000_000, "Downloading")
    plain.advance("abc", 1_000_000)
    plain.restart("abc", 500_000, "ProtocolError")
    plain.advance("abc", 1_500_000)
    plain.finish("abc", "Pull complete")
    plain.skip("def", "Already exists")
    text = lines.getvalue().splitlines()
    assert text[0] == "abc: Downloading 2MB"
    assert text[1] == "abc: retrying at 500kB: ProtocolError"
    assert text[2].startswith("abc: Pull complete (2MB in ") and text[2].endswith("/s)")
    assert text[3] == "def: Already exists"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    bars = reporter(screen)
    assert isinstance(bars, TtyProgress)
    bars.start("abc", 1000, "Downloading")
    bars.start("def", 1000, "Downloading")
    bars.advance("abc", 500)
    bars.finish("def", "Pull complete")
    bars.close()
    out = screen.getvalue()
    assert "\x1b[2F" in out  # redraws both lines in place
    assert "abc: Downloading [" in out and "500B/1kB" in out and "def: Pull complete" in out
    assert isinstance(reporter(io.StringIO()), LineProgress)
    assert type(reporter(screen, quiet=True)).__name__ == "Progress"


def test_push_pull_mount_and_tags_on_every_registry_kind(
    any_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole flow with Basic auth, Docker-Hub-style tokens (push and a mount need two scopes) and TLS."""
    registry = any_registry
    config = tmp_path / "docker"
    config.mkdir()
    credentials = f"{registry.user}:{registry.password}".encode()
    auths = {registry.host: {"auth": base64.b64encode(credentials).decode()}} if registry.user else {}
    (config / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    options = ["--root", str(tmp_path / "src"), *(["--certs-dir", str(registry.certs_dir)] if registry.certs_dir else [])]
    first = f"{registry.host}/{registry.namespace}/{uuid.uuid4().hex[:12]}:v1"
    image = build_image(Layout(tmp_path / "src"), "app", [random_layer(40_000), random_layer(300)])

    code, out, err = run_cli(capsys, *options, "push", "app", first)
    assert code == 0, err
    assert out.strip() == str(image.digest)
    options[1] = str(tmp_path / "dst")
    code, out, err = run_cli(capsys, *options, "pull", "-q", "--digestfile", str(tmp_path / "digest"), first)
    assert code == 0 and out.strip() == first and (tmp_path / "digest").read_text() == str(image.digest), err
    second = f"{registry.host}/{registry.namespace}/{uuid.uuid4().hex[:12]}:v2"
    code, out, err = run_cli(capsys, *options, "push", first, second)
    assert code == 0, err
    assert err.count("Mounted from") == 2 and out.strip() == str(image.digest)  # the layers
    code, out, err = run_cli(capsys, *options, "tags", second.rsplit(":", 1)[0])
    assert (code, out) == (0, "v2\n"), err
