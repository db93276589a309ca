"""Credentials in config.json / auth.json / credential helpers, read and written as Docker does."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from imagekit.errors import CredentialsError
from imagekit.registry.credentials import Credentials, CredentialStore, config_key, registry_hostname
from tests.registry.credhelper import FakeHelper

SECRET = "s3cr3t-Pa55"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _store(tmp_path: Path, config: dict | None = None, auth_file: dict | None = None) -> CredentialStore:
    docker = tmp_path / "docker" / "config.json"
    if config is not None:
        docker.parent.mkdir(parents=True, exist_ok=True)
        docker.write_text(json.dumps(config))
    podman = None
    if auth_file is not None:
        podman = tmp_path / "auth.json"
        podman.write_text(json.dumps(auth_file))
    return CredentialStore(docker, podman, env={})


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://registry-1.docker.io/v2/", "docker.io"),
        ("http://localhost:5000", "localhost:5000"),
        ("https://Quay.io/v2/", "quay.io"),
        ("quay.io/namespace/repo", "quay.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_every_docker_spelling_names_its_host(key: str, host: str) -> None:
    assert registry_hostname(key) == host


def test_config_key_is_dockers() -> None:
    assert config_key("registry-1.docker.io") == "https://index.docker.io/v1/"
    assert config_key("docker.io") == "https://index.docker.io/v1/"
    assert config_key("https://localhost:5000/") == "localhost:5000"


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_entry_found_under_any_spelling(tmp_path: Path, key: str) -> None:
    store = _store(tmp_path, {"auths": {key: {"auth": _auth("hubuser", SECRET)}}})
    assert store.get("registry-1.docker.io") == Credentials("hubuser", SECRET)
    assert store.get("docker.io") == Credentials("hubuser", SECRET)
    assert store.get("quay.io") is None


def test_username_password_fields_identitytoken_and_empty_entries(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "auths": {
                "https://a.example:5000/v2/": {"username": "u", "password": SECRET},
                "b.example": {"auth": _auth("u", ""), "identitytoken": "idtok"},
                "c.example": {},
                "d.example": {"auth": _auth("u", "pa:ss:word")},
            }
        },
    )
    assert store.get("a.example:5000") == Credentials("u", SECRET)
    assert store.get("b.example") == Credentials("u", identity_token="idtok")
    assert store.get("c.example") is None
    assert store.get("d.example") == Credentials("u", "pa:ss:word")


def test_exact_key_wins_over_other_spellings(tmp_path: Path) -> None:
    store = _store(tmp_path, {"auths": {"https://h.example/v2/": {"auth": _auth("old", "x")}, "h.example": {"auth": _auth("new", "y")}}})
    assert store.get("h.example") == Credentials("new", "y")


def test_registry_auth_file_comes_first(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {"auths": {"h.example": {"auth": _auth("docker", "1")}, "other.example": {"auth": _auth("docker", "2")}}},
        {"auths": {"h.example": {"auth": _auth("podman", "3")}}},
    )
    assert store.get("h.example") == Credentials("podman", "3")
    assert store.get("other.example") == Credentials("docker", "2")


def test_env_selects_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text(json.dumps({"auths": {"h.example": {"auth": _auth("u", "p")}}}))
    store = CredentialStore(env={"DOCKER_CONFIG": str(tmp_path / "d"), "REGISTRY_AUTH_FILE": str(tmp_path / "none.json")})
    assert store.docker_config == tmp_path / "d" / "config.json"
    assert store.get("h.example") == Credentials("u", "p")


def test_missing_files_mean_no_credentials(tmp_path: Path) -> None:
    assert _store(tmp_path).get("h.example") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"auths": {"h.example": {"auth": "%%%" + SECRET}}}), "invalid 'auth'"),
        (json.dumps({"auths": {"h.example": {"auth": base64.b64encode(SECRET.encode()).decode()}}}), "no ':'"),
        (json.dumps({"auths": {"h.example": "nope"}}), "not an object"),
    ],
)
def test_broken_config_is_a_one_line_error_without_secrets(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(CredentialsError, match=problem) as caught:
        CredentialStore(path, env={}).get("h.example")
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message and str(path) in message


def test_store_writes_0600_atomically_and_keeps_other_keys(tmp_path: Path) -> None:
    store = _store(tmp_path, {"auths": {"https://keep.example/": {"auth": _auth("k", "k")}, "http://h.example/v2/": {}}, "psFormat": "x"})
    os.chmod(store.docker_config, 0o644)
    store.store("h.example", Credentials("u", SECRET))
    data = json.loads(store.docker_config.read_text())
    assert data["psFormat"] == "x"
    assert data["auths"]["h.example"] == {"auth": _auth("u", SECRET)}
    assert "http://h.example/v2/" not in data["auths"] and "https://keep.example/" in data["auths"]
    assert stat.S_IMODE(store.docker_config.stat().st_mode) == 0o600
    assert [p.name for p in store.docker_config.parent.iterdir()] == ["config.json"]
    store.store("docker.io", Credentials("hub", SECRET))
    assert "https://index.docker.io/v1/" in json.loads(store.docker_config.read_text())["auths"]


def test_store_creates_the_directory_private(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "new" / "config.json", env={})
    store.store("h.example", Credentials("u", SECRET))
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert store.get("h.example") == Credentials("u", SECRET)


def test_erase_removes_every_spelling_from_both_files(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {"auths": {"h.example": {"auth": _auth("u", "p")}, "https://h.example/v1/": {}, "o.example": {"auth": _auth("o", "o")}}},
        {"auths": {"h.example": {"auth": _auth("v", "q")}}},
    )
    assert store.erase("https://h.example") is True
    assert store.get("h.example") is None and store.get("o.example") == Credentials("o", "o")
    assert store.erase("h.example") is False


def test_credentials_repr_hides_secrets() -> None:
    text = repr(Credentials("user", SECRET, "tok-" + SECRET))
    assert "user" in text and SECRET not in text


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHelper:
    fake = FakeHelper(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return fake


def test_creds_store_helper_protocol(tmp_path: Path, helper: FakeHelper) -> None:
    store = _store(tmp_path, {"credsStore": "fake", "auths": {"h.example": {}}})
    assert store.get("h.example") is None
    assert helper.calls() == [("get", "h.example")]
    where = store.store("h.example", Credentials("u", SECRET))
    assert where == "credential helper docker-credential-fake"
    assert helper.secrets() == {"h.example": ["u", SECRET]}
    assert SECRET not in store.docker_config.read_text()
    assert store.get("h.example") == Credentials("u", SECRET)
    store.store("docker.io", Credentials(identity_token="idt-" + SECRET))
    assert helper.secrets()["https://index.docker.io/v1/"] == ["<token>", "idt-" + SECRET]
    assert store.get("registry-1.docker.io") == Credentials(identity_token="idt-" + SECRET)
    assert store.erase("h.example") is True
    assert "h.example" not in helper.secrets()
    assert ("store", json.dumps({"ServerURL": "h.example", "Username": "u", "Secret": SECRET})) in helper.calls()
    assert ("erase", "h.example") in helper.calls()


def test_cred_helpers_take_precedence_per_host(tmp_path: Path, helper: FakeHelper) -> None:
    helper.put("h.example:5000", "helped", SECRET)
    store = _store(
        tmp_path,
        {"credHelpers": {"https://h.example:5000": "fake"}, "auths": {"h.example:5000": {"auth": _auth("file", "x")}, "o.example": {"auth": _auth("o", "o")}}},
    )
    assert store.get("h.example:5000") == Credentials("helped", SECRET)
    assert store.get("o.example") == Credentials("o", "o")
    assert [c[0] for c in helper.calls()] == ["get"]


def test_missing_helper_falls_back_on_get_and_fails_on_store(tmp_path: Path, helper: FakeHelper, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path, {"credsStore": "absent", "auths": {"h.example": {"auth": _auth("u", "p")}}})
    assert store.get("h.example") == Credentials("u", "p")
    assert store.get("o.example") is None
    assert "docker-credential-absent, which is not on PATH" in caplog.text
    with pytest.raises(CredentialsError, match="docker-credential-absent is not on PATH"):
        store.store("h.example", Credentials("u", SECRET))


def test_failing_helper_is_a_credentials_error(tmp_path: Path, helper: FakeHelper) -> None:
    (tmp_path / "bin" / "docker-credential-broken").write_text("#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n")
    (tmp_path / "bin" / "docker-credential-broken").chmod(0o755)
    with pytest.raises(CredentialsError, match="docker-credential-broken get failed: keychain locked"):
        _store(tmp_path, {"credsStore": "broken"}).get("h.example")
