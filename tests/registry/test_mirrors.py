"""Docker Hub pulls through registry mirrors, against real registries on loopback.

"Docker Hub" here is a local registry (open_registry) standing in through IMAGEKIT_DOCKER_HUB_API; the
real one is never contacted (every test here points that variable at loopback). Mirrors are other
local registries, some behind a recording, fault-injecting proxy. To tell who served a pull, the
mirror and the hub hold different images under the same name.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.errors import RegistryError, StoreError
from imagekit.image import Image
from imagekit.layout import Layout
from imagekit.registry.client import Repository
from imagekit.registry.credentials import Credentials, CredentialStore
from imagekit.registry.mirrors import BadMirror, Mirror, Source, first_serving, parse_mirror, parse_mirrors
from imagekit.registry.retry import NO_RETRY
from imagekit.registry.transfer import push
from imagekit.registry.transport import Transport
from tests.registry.auth_servers import PASSWORD, USER, AuthRegistry
from tests.registry.cli import assert_one_line_error, run_cli
from tests.registry.fault_proxy import Fault, FaultProxy
from tests.registry.images import build_image, random_layer
from tests.registry.registry_server import RegistryServer, free_port, start_registry

HUB_SECRET = "hub-Secret-never-for-mirrors-31337"


# -- mirror URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url", "host", "path"),
    [
        ("http://127.0.0.1:5001", "http://127.0.0.1:5001", "127.0.0.1:5001", ""),
        ("https://Mirror.Example/", "https://mirror.example", "mirror.example", ""),
        ("HTTPS://mirror.example:8443/hub/cache/", "https://mirror.example:8443/hub/cache", "mirror.example:8443", "/hub/cache"),
        ("https://[::1]:5000", "https://[::1]:5000", "[::1]:5000", ""),
    ],
)
def test_mirror_urls_are_normalised(text: str, url: str, host: str, path: str) -> None:
    mirror = parse_mirror(text)
    assert (mirror.url, mirror.host, mirror.path, str(mirror)) == (url, host, path, url)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mirror.example", "no scheme"),
        ("mirror.example:5000", "no scheme"),
        ("ftp://mirror.example", "unsupported scheme 'ftp'"),
        ("https://", "invalid host"),
        ("https://mirror.example?x=1", "query or fragment"),
        ("https://mirror.example/#top", "query or fragment"),
        ("https://mirror.example:http", "invalid host"),
        ("https://mirror.example:65536", "port"),
        ("https://mirror.example:0", "port"),
        ("https://mirror .example", "whitespace"),
        ("https://mirror_example", "invalid host"),
        ("https://mirror.example/a/../../v2", "invalid path segment '..'"),
    ],
)
def test_bad_mirror_urls_are_named_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(BadMirror) as caught:
        parse_mirror(text)
    message = str(caught.value)
    assert message.startswith(f"invalid registry mirror {text!r}: ") and problem in message
    assert "\n" not in message


def test_a_password_in_a_mirror_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(BadMirror, match="user name or password") as caught:
        parse_mirror("https://me:" + HUB_SECRET + "@mirror.example")
    assert HUB_SECRET not in str(caught.value) and "mirror.example" in str(caught.value)


def test_mirror_lists_split_on_commas_and_keep_their_order() -> None:
    assert parse_mirrors(["http://127.0.0.1:1, https://b.example/,", "https://c.example"]) == (
        Mirror("http", "127.0.0.1:1"),
        Mirror("https", "b.example"),
        Mirror("https", "c.example"),
    )
    assert parse_mirrors(["", " , "]) == ()


def test_first_serving_falls_back_only_on_what_another_source_may_cure(open_registry: RegistryServer) -> None:
    sources = [Source(Repository(Transport(open_registry.host), f"library/s{i}"), Mirror("http", open_registry.host)) for i in range(2)]
    sources.append(Source(Repository(Transport(open_registry.host), "library/hub")))
    tried: list[str] = []
    reported: list[tuple[str, str]] = []

    def attempt(source: Source) -> str:
        tried.append(source.repo.name)
        if source.repo.name != "library/hub":
            raise RegistryError("manifest unknown", status=404)
        return "served"

    assert first_serving(sources, attempt, lambda failed, _err, following: reported.append((failed.repo.name, following.repo.name))) == "served"
    assert tried == ["library/s0", "library/s1", "library/hub"]
    assert reported == [("library/s0", "library/s1"), ("library/s1", "library/hub")]

    def broken_store(source: Source) -> str:
        tried.append(source.repo.name)
        raise StoreError("disk full")

    tried.clear()
    with pytest.raises(StoreError):
        first_serving(sources, broken_store)
    assert tried == ["library/s0"]  # a local failure is not the mirror's fault: no fallback

    def always_fails(source: Source) -> str:
        raise RegistryError(f"down: {source.repo.name}")

    with pytest.raises(RegistryError, match="down: library/hub"):
        first_serving(sources, always_fails)


def test_a_mirror_url_fixes_the_scheme(open_registry: RegistryServer) -> None:
    with pytest.raises(RegistryError, match="plain HTTP to mirror.example is not allowed"):
        Transport("mirror.example", scheme="http")
    # https on a loopback host that speaks only plain HTTP fails: the URL said https, so no downgrade.
    with pytest.raises(RegistryError):
        Transport(open_registry.host, scheme="https", retry=NO_RETRY).ping()
    assert Transport(open_registry.host, scheme="http").base_url == f"http://{open_registry.host}"


# -- pulls through the CLI --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-mirror"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_registry: RegistryServer) -> None:
    """No user settings or credentials leak in; "Docker Hub" is the local open registry."""
    monkeypatch.setenv("IMAGEKIT_DOCKER_HUB_API", open_registry.host)
    monkeypatch.setenv("IMAGEKIT_CONFIG", str(tmp_path / "imagekit-config.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    for name in ("IMAGEKIT_REGISTRY_MIRRORS", "REGISTRY_AUTH_FILE", "IMAGEKIT_INSECURE_REGISTRIES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mirror_proxy(mirror_registry: RegistryServer) -> Iterator[FaultProxy]:
    """A recording, fault-injecting proxy in front of the mirror registry."""
    proxy = FaultProxy(mirror_registry.host)
    yield proxy
    proxy.stop()


def seed(host: str, path: str, tmp_path: Path, size: int = 200_000, transport: Transport | None = None) -> Image:
    """A fresh image pushed to `host` as `path:latest`."""
    image = build_image(Layout(tmp_path / f"seed-{uuid.uuid4().hex[:8]}"), "seed:1", [random_layer(size), random_layer(1000)])
    push(image, Repository(transport or Transport(host), path), "latest")
    return image


def new_name() -> str:
    return "m" + uuid.uuid4().hex[:12]


def pulled_digest(root: Path, name: str) -> Digest:
    return Layout(root).image(f"docker.io/library/{name}:latest").digest


def assert_store_sound(root: Path) -> None:
    """Every stored blob hashes to its name."""
    blobs = root / "blobs" / "sha256"
    for path in blobs.iterdir() if blobs.exists() else ():
        assert str(Digest.of_bytes(path.read_bytes())) == f"sha256:{path.name}"


@pytest.mark.parametrize("given_by", ["flag", "environment", "settings file"])
def test_a_docker_hub_pull_comes_from_the_mirror(
    given_by: str, tmp_path: Path, mirror_registry: RegistryServer, open_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    name = new_name()
    on_mirror = seed(mirror_registry.host, f"library/{name}", tmp_path)
    seed(open_registry.host, f"library/{name}", tmp_path)
    url = f"http://{mirror_registry.host}"
    args = ["--root", str(tmp_path / "store"), "--debug"]
    if given_by == "flag":
        args += ["--registry-mirror", url]
    elif given_by == "environment":
        monkeypatch.setenv("IMAGEKIT_REGISTRY_MIRRORS", url)
    else:
        (tmp_path / "imagekit-config.json").write_text(json.dumps({"registry-mirrors": [url]}))
    code, out, err = run_cli(capsys, *args, "pull", name)
    assert code == 0, err
    assert out.strip() == f"docker.io/library/{name}:latest"
    assert f"latest: Pulling from library/{name} via mirror {url}" in err
    assert f"GET {url}/v2/library/{name}/manifests/latest -> 200" in err  # --debug shows who served
    assert f"Digest: {on_mirror.digest}" in err
    assert pulled_digest(tmp_path / "store", name) == on_mirror.digest
    assert open_registry.host not in err  # the hub was never asked


def test_unreachable_mirrors_fall_back_in_order_then_to_docker_hub(
    tmp_path: Path, mirror_registry: RegistryServer, open_registry: RegistryServer, capsys
) -> None:
    name = new_name()
    on_mirror = seed(mirror_registry.host, f"library/{name}", tmp_path)
    on_hub = seed(open_registry.host, f"library/{name}", tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "a"), "--registry-mirror", f"{dead},http://{mirror_registry.host}", "pull", name)
    assert code == 0, err
    assert f"mirror {dead} failed: cannot reach 127.0.0.1:" in err and f"trying mirror http://{mirror_registry.host}" in err
    assert pulled_digest(tmp_path / "a", name) == on_mirror.digest

    code, _, err = run_cli(capsys, "--root", str(tmp_path / "b"), "--registry-mirror", dead, "pull", name)
    assert code == 0, err
    assert f"mirror {dead} failed: cannot reach" in err and f"trying {open_registry.host}" in err
    assert f"Pulling from library/{name}\n" in err
    assert pulled_digest(tmp_path / "b", name) == on_hub.digest


def test_a_mirror_without_the_image_or_failing_falls_back(
    tmp_path: Path, mirror_proxy: FaultProxy, open_registry: RegistryServer, capsys
) -> None:
    name = new_name()
    on_hub = seed(open_registry.host, f"library/{name}", tmp_path)
    mirror = f"http://{mirror_proxy.host}"
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "a"), "--registry-mirror", mirror, "pull", name)
    assert code == 0, err
    assert f"mirror {mirror} failed: manifest unknown: library/{name}:latest not found" in err
    assert pulled_digest(tmp_path / "a", name) == on_hub.digest

    seed(mirror_proxy.upstream, f"library/{name}", tmp_path)  # now the mirror has it, but answers 503
    mirror_proxy.inject(Fault("status", path="/manifests/", status=503, times=10))
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "b"), "--registry-mirror", mirror, "pull", name)
    assert code == 0, err
    assert f"mirror {mirror} failed: GET /v2/library/{name}/manifests/latest: HTTP 503" in err
    assert pulled_digest(tmp_path / "b", name) == on_hub.digest


def test_an_https_mirror_is_verified_like_any_registry(
    tmp_path: Path, tls_registry: AuthRegistry, open_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "IMAGEKIT_CERTS_D"):
        monkeypatch.delenv(name, raising=False)
    name = new_name()
    on_mirror = seed(tls_registry.host, f"library/{name}", tmp_path, transport=tls_registry.transport())
    on_hub = seed(open_registry.host, f"library/{name}", tmp_path)
    mirror = ["--registry-mirror", f"https://{tls_registry.host}"]
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "a"), "--certs-dir", str(tls_registry.certs_dir), *mirror, "pull", name)
    assert code == 0, err
    assert pulled_digest(tmp_path / "a", name) == on_mirror.digest
    # Without its CA the mirror is not trusted, and never downgraded to plain HTTP: Docker Hub serves.
    (tmp_path / "no-certs").mkdir()
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "b"), "--certs-dir", str(tmp_path / "no-certs"), *mirror, "pull", name)
    assert code == 0, err
    assert f"mirror https://{tls_registry.host} failed: TLS verification of {tls_registry.host} failed" in err
    assert pulled_digest(tmp_path / "b", name) == on_hub.digest


def test_a_mirror_path_roots_its_api(tmp_path: Path, mirror_registry: RegistryServer, capsys) -> None:
    name = new_name()
    on_mirror = seed(mirror_registry.host, f"library/{name}", tmp_path)
    proxy = FaultProxy(mirror_registry.host, prefix="/hub/cache")
    try:
        code, _, err = run_cli(capsys, "--root", str(tmp_path / "s"), "--registry-mirror", f"http://{proxy.host}/hub/cache/", "pull", name)
        paths = [path for _, path, _ in proxy.requests]
    finally:
        proxy.stop()
    assert code == 0, err
    assert pulled_digest(tmp_path / "s", name) == on_mirror.digest
    assert paths and all(path.startswith("/hub/cache/v2/") for path in paths)


def serve_instead(proxy: FaultProxy, digest: Digest, impostor: Image) -> None:
    """From now on the proxied mirror answers requests for manifest `digest` with the impostor's manifest."""
    headers = {"Content-Type": impostor.manifest.media_type}
    proxy.inject(Fault("replace", path=f"/manifests/{digest}", status=200, body=impostor.manifest_bytes, headers=headers, times=100))


def test_a_mirror_serving_the_wrong_manifest_for_a_digest_never_gets_stored(
    tmp_path: Path, mirror_proxy: FaultProxy, open_registry: RegistryServer, capsys
) -> None:
    name = new_name()
    on_hub = seed(open_registry.host, f"library/{name}", tmp_path)
    impostor = seed(mirror_proxy.upstream, f"library/{name}", tmp_path)
    serve_instead(mirror_proxy, on_hub.digest, impostor)
    ref = f"{name}@{on_hub.digest}"
    code, out, err = run_cli(capsys, "--root", str(tmp_path / "a"), "--registry-mirror", f"http://{mirror_proxy.host}", "pull", ref)
    assert code == 0, err
    assert f"failed: manifest library/{name}@{on_hub.digest}: expected {on_hub.digest}, got {impostor.digest}" in err
    assert f"Digest: {on_hub.digest}" in err and out.strip() == f"docker.io/library/{name}@{on_hub.digest}"
    assert Layout(tmp_path / "a").image(out.strip()).manifest_bytes == on_hub.manifest_bytes
    assert not (tmp_path / "a" / "blobs" / "sha256" / impostor.digest.hex).exists()
    assert_store_sound(tmp_path / "a")

    # When Docker Hub cannot help either, the pull fails in one line and stores nothing named.
    only_mirror = new_name()
    lying = seed(mirror_proxy.upstream, f"library/{only_mirror}", tmp_path)
    serve_instead(mirror_proxy, lying.digest, impostor)
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "b"), "--registry-mirror", f"http://{mirror_proxy.host}", "pull", "-q", f"{only_mirror}@{lying.digest}")
    assert_one_line_error(code, err)
    assert err == f"imagekit: manifest unknown: library/{only_mirror}@{lying.digest} not found on {open_registry.host}\n"
    assert_store_sound(tmp_path / "b")
    assert Layout(tmp_path / "b").refs() == []


def test_a_mirror_corrupting_a_layer_is_left_for_docker_hub(tmp_path: Path, mirror_proxy: FaultProxy, open_registry: RegistryServer, capsys) -> None:
    name = new_name()
    image = seed(open_registry.host, f"library/{name}", tmp_path, size=2_000_000)
    push(image, Repository(Transport(mirror_proxy.upstream), f"library/{name}"), "latest")  # the same image on the mirror
    layer = image.manifest.layers[0].digest
    mirror_proxy.inject(Fault("corrupt", path=f"/blobs/{layer}", times=100))
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "s"), "--registry-mirror", f"http://{mirror_proxy.host}", "pull", f"{name}@{image.digest}")
    assert code == 0, err
    assert any(kind == "corrupt" for kind, _, _ in mirror_proxy.fired)
    assert f"mirror http://{mirror_proxy.host} failed: blob {layer}: expected {layer}, got sha256:" in err
    assert Layout(tmp_path / "s").image(f"docker.io/library/{name}@{image.digest}").digest == image.digest
    assert_store_sound(tmp_path / "s")


def test_push_and_other_registries_never_use_mirrors(
    tmp_path: Path, mirror_proxy: FaultProxy, mirror_registry: RegistryServer, open_registry: RegistryServer, capsys
) -> None:
    name = new_name()
    root = tmp_path / "store"
    local = build_image(Layout(root), "local/app:1", [random_layer(50_000)])
    mirror = ["--registry-mirror", f"http://{mirror_proxy.host}"]
    code, out, err = run_cli(capsys, "--root", str(root), *mirror, "push", "local/app:1", f"{name}:1")
    assert code == 0, err
    assert out.strip() == str(local.digest)
    assert Repository(Transport(open_registry.host), f"library/{name}").head_manifest("1") is not None  # it went to "Docker Hub"
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "other"), *mirror, "pull", f"{open_registry.host}/library/{name}:1")
    assert code == 0, err
    assert mirror_proxy.requests == []
    assert not (mirror_registry.storage / "docker" / "registry" / "v2" / "repositories" / "library" / name).exists()


def test_docker_hub_credentials_never_reach_a_mirror(
    tmp_path: Path, basic_registry: AuthRegistry, token_registry: AuthRegistry, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A mirror that wants credentials it was not given is skipped; Docker Hub's go only to Docker Hub."""
    name = f"{USER}/{new_name()}"
    on_hub = seed(token_registry.host, name, tmp_path, transport=token_registry.transport())
    monkeypatch.setenv("IMAGEKIT_DOCKER_HUB_API", token_registry.host)
    CredentialStore().store("docker.io", Credentials(USER, PASSWORD))
    tokens = token_registry.token_server
    assert tokens is not None
    before = len(tokens.requests)
    proxy = FaultProxy(basic_registry.host)
    try:
        mirror = f"http://{proxy.host}"
        code, _, err = run_cli(capsys, "--root", str(tmp_path / "s"), "--registry-mirror", mirror, "pull", name)
        seen = list(proxy.requests)
    finally:
        proxy.stop()
    assert code == 0, err
    assert f"mirror {mirror} failed:" in err and "401" in err
    assert Layout(tmp_path / "s").image(f"docker.io/{name}:latest").digest == on_hub.digest
    assert seen and all("Authorization" not in headers for _, _, headers in seen)
    assert any(r.account == USER for r in tokens.requests[before:])  # the credentials did go to Docker Hub


def test_a_mirror_gets_its_own_credentials_and_never_docker_hubs(tmp_path: Path, basic_registry: AuthRegistry, capsys) -> None:
    name = new_name()
    on_mirror = seed(basic_registry.host, f"library/{name}", tmp_path, transport=basic_registry.transport())
    proxy = FaultProxy(basic_registry.host)
    try:
        CredentialStore().store("docker.io", Credentials("hubuser", HUB_SECRET))
        CredentialStore().store(proxy.host, Credentials(USER, PASSWORD))
        code, _, err = run_cli(capsys, "--root", str(tmp_path / "s"), "--registry-mirror", f"http://{proxy.host}", "pull", name)
        seen = list(proxy.requests)
    finally:
        proxy.stop()
    assert code == 0, err
    assert pulled_digest(tmp_path / "s", name) == on_mirror.digest
    mirror_basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    sent = {headers["Authorization"] for _, _, headers in seen if "Authorization" in headers}
    assert sent == {mirror_basic}
    assert all(HUB_SECRET not in json.dumps(headers) and "hubuser" not in json.dumps(headers) for _, _, headers in seen)


# -- configuration errors ---------------------------------------------------------------------------


def test_bad_mirror_settings_are_one_line_errors(tmp_path: Path, open_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    root = ["--root", str(tmp_path / "s")]
    code, _, err = run_cli(capsys, *root, "--registry-mirror", "mirror.example:5000", "pull", "busybox")
    assert_one_line_error(code, err)
    assert "invalid registry mirror 'mirror.example:5000': no scheme" in err
    monkeypatch.setenv("IMAGEKIT_REGISTRY_MIRRORS", f"http://{open_registry.host},ftp://x")
    code, _, err = run_cli(capsys, *root, "pull", "busybox")
    assert_one_line_error(code, err)
    assert "invalid registry mirror 'ftp://x'" in err
    code, _, err = run_cli(capsys, *root, "--registry-mirror", "http://mirror.example", "pull", "busybox")
    assert_one_line_error(code, err)
    assert "plain HTTP to mirror.example is not allowed" in err
    monkeypatch.delenv("IMAGEKIT_REGISTRY_MIRRORS")

    settings = tmp_path / "imagekit-config.json"
    for text, problem in [
        ("{", "is not valid JSON"),
        ('{"registry-mirror": ["https://m.example"]}', "unknown setting 'registry-mirror'"),
        ('{"registry-mirrors": "https://m.example"}', "'registry-mirrors' must be a list"),
        ('{"registry-mirrors": ["m.example"]}', "invalid registry mirror 'm.example'"),
    ]:
        settings.write_text(text)
        code, _, err = run_cli(capsys, *root, "pull", "busybox")
        assert_one_line_error(code, err)
        assert problem in err, err
    # Only docker.io pulls read the settings: other registries keep working with a broken file.
    seed(open_registry.host, "test/settings", tmp_path)
    code, _, err = run_cli(capsys, *root, "pull", f"{open_registry.host}/test/settings")
    assert code == 0, err
    # The command line replaces the settings file's list.
    settings.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:1"]}))
    seed(open_registry.host, "library/fromhub", tmp_path)
    code, _, err = run_cli(capsys, *root, "--registry-mirror", f"http://{open_registry.host}", "pull", "fromhub")
    assert code == 0 and "127.0.0.1:1" not in err, err
