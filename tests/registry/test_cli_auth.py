"""`imagekit login` / `logout` through the real entry point, and the promise that secrets never leak.

Runs against the real Basic and token registries; credentials land in a DOCKER_CONFIG under tmp_path.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from imagekit.cli import main
from imagekit.errors import AuthError
from imagekit.registry.credentials import Credentials
from imagekit.registry.options import RegistryOptions, api_host, is_insecure, transport_for
from tests.registry.auth_servers import OTHER_PASSWORD, OTHER_USER, PASSWORD, AuthRegistry
from tests.registry.credhelper import FakeHelper

IMAGEKIT = Path(sys.executable).parent / "imagekit"


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return tmp_path / "docker" / "config.json"


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["basic_registry", "token_registry"])
def test_login_verifies_then_stores_0600_and_logout_erases(kind: str, request: pytest.FixtureRequest, docker_config: Path, capsys) -> None:
    registry: AuthRegistry = request.getfixturevalue(kind)
    code, out, err = run(["login", "-u", registry.user, "--password-stdin", registry.host], capsys, PASSWORD + "\n")
    assert (code, out) == (0, "Login Succeeded\n"), err
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o600
    auths = json.loads(docker_config.read_text())["auths"]
    assert list(auths) == [registry.host]
    # The stored credentials are what the next command uses.
    from imagekit.registry.credentials import CredentialStore

    assert CredentialStore().get(registry.host) == Credentials(registry.user or "", PASSWORD)
    code, out, _ = run(["logout", registry.host], capsys)
    assert (code, out) == (0, f"Removing login credentials for {registry.host}\n")
    assert json.loads(docker_config.read_text())["auths"] == {}
    assert run(["logout", registry.host], capsys)[1] == f"Not logged in to {registry.host}\n"


@pytest.mark.parametrize("kind", ["basic_registry", "token_registry"])
def test_failed_login_stores_nothing_and_says_one_line(kind: str, request: pytest.FixtureRequest, docker_config: Path, capsys) -> None:
    registry: AuthRegistry = request.getfixturevalue(kind)
    wrong = "wrong-" + PASSWORD
    code, out, err = run(["login", "-u", registry.user, "-p", wrong, registry.host], capsys)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("WARNING! Using --password via the CLI is insecure")
    assert len(lines) == 2 and lines[1] == f"imagekit: invalid username or password for {registry.host}"
    assert wrong not in err and "Traceback" not in err
    assert not docker_config.exists()


def test_login_through_a_credential_helper(token_registry: AuthRegistry, docker_config: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    helper = FakeHelper(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    docker_config.parent.mkdir(parents=True)
    docker_config.write_text(json.dumps({"credsStore": "fake"}))
    code, out, err = run(["login", "-u", token_registry.user, "--password-stdin", token_registry.host], capsys, PASSWORD)
    assert code == 0, err
    assert helper.secrets() == {token_registry.host: [token_registry.user, PASSWORD]}
    assert PASSWORD not in docker_config.read_text()
    assert run(["logout", token_registry.host], capsys)[0] == 0
    assert helper.secrets() == {}


def test_login_usage_errors(docker_config: Path, capsys) -> None:
    code, _, err = run(["login", "--password-stdin", "127.0.0.1:1"], capsys, "pw")
    assert code == 2 and "--password-stdin requires --username" in err


def test_login_to_tls_registry_needs_its_ca(tls_registry: AuthRegistry, docker_config: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "IMAGEKIT_CERTS_D"):
        monkeypatch.delenv(name, raising=False)
    argv = ["login", "-u", "anyone", "--password-stdin", tls_registry.host]
    (tmp_path / "empty").mkdir()  # a certs dir without this registry's CA
    code, _, err = run(["--certs-dir", str(tmp_path / "empty"), *argv], capsys, "pw")
    assert code == 1 and err.count("\n") == 1 and f"imagekit: TLS verification of {tls_registry.host} failed" in err
    code, out, err = run(["--certs-dir", str(tls_registry.certs_dir), *argv], capsys, "pw")
    assert (code, out) == (0, "Login Succeeded\n"), err
    for flag in ("--tls-verify=false", "--no-tls-verify"):
        code, out, err = run([flag, "--certs-dir", str(tmp_path / "empty"), *argv], capsys, "pw")
        assert (code, out) == (0, "Login Succeeded\n"), err
        assert f"TLS certificates of {tls_registry.host} are not verified" in err


def test_insecure_registry_matching_and_api_hosts() -> None:
    assert is_insecure("reg.example:5000", ("reg.example:5000",))
    assert is_insecure("reg.example:5000", ("reg.example",))
    assert is_insecure("reg.example:5000", ("http://reg.example:5000/",))
    assert not is_insecure("reg.example:5000", ("other.example",))
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("https://index.docker.io/v1/") == "registry-1.docker.io"
    assert api_host("localhost:5000") == "localhost:5000"


def test_secrets_never_leak_with_debug(
    token_registry: AuthRegistry, basic_registry: AuthRegistry, docker_config: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    """Failing and succeeding auth with --debug: no password or token in output, logs or exceptions."""
    tokens = token_registry.token_server
    assert tokens is not None
    caplog.set_level(logging.DEBUG)
    before = len(tokens.requests)
    wrong = "leaky-" + OTHER_PASSWORD
    outputs: list[str] = []
    for registry in (token_registry, basic_registry):
        for user, password in ((registry.user, wrong), (OTHER_USER, OTHER_PASSWORD), (registry.user, PASSWORD)):
            code, out, err = run(["--debug", "login", "-u", user, "--password-stdin", registry.host], capsys, password)
            outputs += [out, err]
            assert "Traceback" not in err
        assert "GET http://" in err  # --debug did log requests
    issued = [r.token for r in tokens.requests[before:] if r.token]
    assert issued, "the successful logins must have fetched tokens"
    # A registry refusal raised from the library: message, args and the whole cause chain.
    exceptions: list[BaseException] = []
    for registry in (token_registry, basic_registry):
        try:
            registry.transport(credentials=Credentials(registry.user or "", wrong), debug=True).authenticate()
        except AuthError as err:
            current: BaseException | None = err
            while current is not None:
                exceptions.append(current)
                current = current.__cause__ or current.__context__
    assert exceptions
    haystacks = outputs + [r.getMessage() for r in caplog.records] + [f"{e!s} {e.args!r}" for e in exceptions]
    for secret in [wrong, PASSWORD, OTHER_PASSWORD, *issued]:
        for text in haystacks:
            assert secret not in text


def test_entry_point_subprocess_one_line_error(token_registry: AuthRegistry, tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    done = subprocess.run(
        [str(IMAGEKIT), "--debug", "login", "-u", token_registry.user or "", "--password-stdin", token_registry.host],
        input="nope-" + PASSWORD,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"imagekit: invalid username or password for {token_registry.host}"
    assert "incorrect username or password" in done.stderr  # the token server's words, in --debug
    assert "Traceback" not in done.stderr and "nope-" + PASSWORD not in done.stderr


def test_transport_for_applies_global_options_and_stored_credentials(docker_config: Path, tmp_path: Path) -> None:
    from imagekit.cli import Context
    from imagekit.cli.auth import registry_options
    from imagekit.reference import parse_reference
    from imagekit.registry.credentials import CredentialStore

    CredentialStore().store("docker.io", Credentials("hubuser", "hub-secret"))
    options = registry_options(Context(tmp_path / "root", True, insecure_registries=("reg.example:5000",), tls_verify=True, certs_dir=tmp_path))
    assert (options.insecure_registries, options.tls_verify, options.certs_dir, options.debug) == (("reg.example:5000",), True, tmp_path, True)
    hub = transport_for(parse_reference("ubuntu:22.04"), options)
    assert hub.registry == "registry-1.docker.io" and hub.credentials == Credentials("hubuser", "hub-secret")
    assert hub.tls_verify and not hub.insecure and hub.debug
    insecure = transport_for(parse_reference("reg.example:5000/app:1"), options)
    assert insecure.insecure and not insecure.tls_verify and insecure.credentials is None
    assert transport_for("https://index.docker.io/v1/", options).credentials == Credentials("hubuser", "hub-secret")
    assert transport_for("https://index.docker.io/v1/", RegistryOptions(), credentials=Credentials("a", "b")).credentials == Credentials("a", "b")


def test_global_registry_options_parse_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from imagekit.cli.group import cli

    ctx = cli.make_context("imagekit", ["--insecure-registry", "a.example:5000", "--insecure-registry", "b.example", "--tls-verify=false", "logout"])
    assert ctx.params["insecure_registries"] == ("a.example:5000", "b.example") and ctx.params["tls_verify"] is False
    monkeypatch.setenv("IMAGEKIT_INSECURE_REGISTRIES", "c.example d.example:1")
    monkeypatch.setenv("IMAGEKIT_CERTS_D", str(tmp_path))
    ctx = cli.make_context("imagekit", ["logout"])
    assert ctx.params["insecure_registries"] == ("c.example", "d.example:1") and ctx.params["tls_verify"] is True
    assert ctx.params["certs_dir"] == tmp_path


def test_login_without_username_reuses_working_stored_credentials(token_registry: AuthRegistry, docker_config: Path, capsys) -> None:
    from imagekit.registry.credentials import CredentialStore

    assert run(["login", "-u", token_registry.user, "--password-stdin", token_registry.host], capsys, PASSWORD)[0] == 0
    code, out, err = run(["login", token_registry.host], capsys)
    assert (code, out) == (0, "Login Succeeded (with the stored credentials)\n"), err
    CredentialStore().store(token_registry.host, Credentials(token_registry.user or "", "stale-" + PASSWORD))
    code, out, err = run(["login", token_registry.host], capsys, f"{token_registry.user}\n{PASSWORD}\n")
    assert (code, out) == (1, "")  # it would have to prompt, and standard input is no terminal
    assert f"The stored credentials for {token_registry.host} do not work" in err and "stale-" not in err + out
    assert err.splitlines()[-1] == "imagekit: Cannot perform an interactive login from a non TTY device (use -u USER --password-stdin)"
    assert "Warning" not in err and "aborted" not in err


def test_interactive_login_prompts_on_a_terminal(token_registry: AuthRegistry, tmp_path: Path) -> None:
    """On a pty, `login REGISTRY` asks for the username and (hidden) password, as docker does."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    child = subprocess.Popen([str(IMAGEKIT), "login", token_registry.host], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    for prompt, answer in ((b"Username: ", token_registry.user or ""), (b"Password: ", PASSWORD)):
        while prompt not in seen:
            seen += os.read(master, 1024)
        os.write(master, answer.encode() + b"\n")
    assert child.wait(timeout=60) == 0
    while b"Login Succeeded" not in seen:
        seen += os.read(master, 1024)
    os.close(master)
    assert PASSWORD.encode() not in seen
