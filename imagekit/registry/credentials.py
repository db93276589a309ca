"""Registry credentials where Docker and podman keep them: config.json, auth.json and credential helpers.

Reading honours `$REGISTRY_AUTH_FILE` (podman's auth.json) first, then `$DOCKER_CONFIG/config.json`
(default `~/.docker/config.json`): its `credHelpers` for the host, else its `credsStore`, else its
`auths` entries. An `auths` key may be spelled any way Docker accepts (`https://index.docker.io/v1/`,
`docker.io`, `http(s)://host:port/v2/`, `host/namespace`): keys are compared by hostname, as docker/cli's
`ConvertToHostname` does. Helpers speak the `docker-credential-<name> get|store|erase` protocol on stdin/
stdout. Writing keeps every other key of config.json and replaces the file atomically with mode 0600.
Secrets never enter a message, a repr or a log line.

Imports: stdlib, imagekit.errors, imagekit.fsutil and imagekit.log only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagekit.errors import CredentialsError, ImagekitError
from imagekit.fsutil import atomic_write
from imagekit.log import logger
from imagekit.values import field, value

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOST = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_TOKEN_USERNAME = "<token>"  # what helpers store as Username for an identity token
_HELPER_TIMEOUT = 30
log = logger("imagekit.registry")


@value
class Credentials:
    """A username with a password, or an identity (refresh) token; secrets are left out of repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown (for redaction of messages)."""
        return tuple(s for s in (self.password, self.identity_token) if s)


def registry_hostname(key: str) -> str:
    """The host[:port] an auths key or registry name stands for; Docker Hub's spellings become `docker.io`."""
    host = key.strip()
    for prefix in ("https://", "http://"):
        if host.lower().startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB_HOST if host in _DOCKER_HUB_ALIASES else host


def config_key(registry: str) -> str:
    """The key Docker writes for `registry`: Docker Hub's legacy v1 URL, else the bare host[:port]."""
    host = registry_hostname(registry)
    return DOCKER_HUB_KEY if host == DOCKER_HUB_HOST else host


def default_docker_config(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    directory = env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(directory) / "config.json"


class CredentialStore:
    """The user's credential files and helpers; `get`, `store` and `erase` by registry name."""

    def __init__(
        self,
        docker_config: Path | None = None,
        auth_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.docker_config = docker_config or default_docker_config(env)
        self.auth_file = auth_file or (Path(env["REGISTRY_AUTH_FILE"]) if env.get("REGISTRY_AUTH_FILE") else None)

    def get(self, registry: str) -> Credentials | None:
        """The credentials for `registry`, or None when none are configured (anonymous access)."""
        host = registry_hostname(registry)
        if self.auth_file is not None:
            found = _from_auths(self.auth_file, load_json_file(self.auth_file), host)
            if found is not None:
                return found
        config = load_json_file(self.docker_config)
        helper = CredentialHelper(_helper_for(config, host) or "")
        if helper.name:
            if helper.installed():
                found = helper.get(config_key(registry))
                if found is not None:
                    return found
            else:
                # A config copied from a desktop (credsStore "desktop") must not break public pulls.
                log.warning("%s names %s, which is not on PATH: using config.json only", self.docker_config, helper.program)
        return _from_auths(self.docker_config, config, host)

    def store(self, registry: str, credentials: Credentials) -> str:
        """Saves credentials for `registry` in its helper or in config.json; returns where, for the user."""
        config = load_json_file(self.docker_config)
        helper = _helper_for(config, registry_hostname(registry))
        if helper:
            CredentialHelper(helper).store(config_key(registry), credentials)
            return f"credential helper docker-credential-{helper}"
        auths = config.setdefault("auths", {})
        if not isinstance(auths, dict):
            raise CredentialsError(f"{self.docker_config}: 'auths' is not an object")
        _drop_host(auths, registry_hostname(registry))
        auths[config_key(registry)] = _encode_entry(credentials)
        _write_json(self.docker_config, config)
        return str(self.docker_config)

    def erase(self, registry: str) -> bool:
        """Removes credentials for `registry` from its helper and every auths file; True if any were there."""
        host = registry_hostname(registry)
        removed = False
        config = load_json_file(self.docker_config)
        helper = _helper_for(config, host)
        if helper:
            removed = CredentialHelper(helper).erase(config_key(registry)) or removed
        for path in (self.docker_config, self.auth_file):
            if path is None:
                continue
            data = config if path == self.docker_config else load_json_file(path)
            auths = data.get("auths")
            if isinstance(auths, dict) and _drop_host(auths, host):
                _write_json(path, data)
                removed = True
        return removed


class CredentialHelper:
    """`docker-credential-<name>`: get/store/erase over stdin/stdout (docker-credential-helpers protocol)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.program = f"docker-credential-{name}"

    def installed(self) -> bool:
        return shutil.which(self.program) is not None

    def get(self, server_url: str) -> Credentials | None:
        ok, out = self._run("get", server_url)
        if not ok:
            if "credentials not found" in out.lower():
                return None
            raise CredentialsError(f"{self.program} get failed: {_first_line(out)}")
        try:
            data = json.loads(out)
            username, secret = str(data["Username"]), str(data["Secret"])
        except (ValueError, KeyError, TypeError) as err:
            raise CredentialsError(f"{self.program} get returned malformed JSON") from err
        if username == _TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        return Credentials(username=username, password=secret)

    def store(self, server_url: str, credentials: Credentials) -> None:
        if credentials.identity_token:
            username, secret = _TOKEN_USERNAME, credentials.identity_token
        else:
            username, secret = credentials.username, credentials.password
        ok, out = self._run("store", json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret}))
        if not ok:
            raise CredentialsError(f"{self.program} store failed: {_first_line(out)}")

    def erase(self, server_url: str) -> bool:
        ok, out = self._run("erase", server_url)
        if not ok and "credentials not found" not in out.lower():
            raise CredentialsError(f"{self.program} erase failed: {_first_line(out)}")
        return ok

    def _run(self, action: str, stdin: str) -> tuple[bool, str]:
        program = shutil.which(self.program)
        if program is None:
            raise CredentialsError(f"credential helper {self.program} is not on PATH")
        try:
            done = subprocess.run(
                [program, action], input=stdin.encode(), capture_output=True, timeout=_HELPER_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise CredentialsError(f"{self.program} {action} could not run: {type(err).__name__}") from err
        out = (done.stdout or done.stderr).decode("utf-8", "replace").strip()
        return done.returncode == 0, out


def _first_line(text: str) -> str:
    return (text.splitlines() or ["no output"])[0][:200]


def load_json_file(path: Path, error: type[ImagekitError] = CredentialsError) -> dict[str, Any]:
    """A JSON settings file as a dict; missing or blank means empty, anything else unreadable raises `error`
    with one line naming the file. Docker's config.json and imagekit's own settings file are read this way."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"cannot read {path}: {getattr(err, 'strerror', None) or type(err).__name__}") from err
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{path} is not valid JSON (line {err.lineno}, column {err.colno})") from None
    if not isinstance(data, dict):
        raise error(f"{path} must hold a JSON object")
    return data


def _helper_for(config: Mapping[str, Any], host: str) -> str | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if registry_hostname(key) == host and isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _from_auths(path: Path, config: Mapping[str, Any], host: str) -> Credentials | None:
    """The auths entry for `host`: the exact key Docker writes first, then any spelling of the same host."""
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    keys = sorted(
        (k for k in auths if registry_hostname(k) == host),
        key=lambda k: (k != config_key(host), "/" in k.split("://")[-1].rstrip("/"), k),
    )
    for key in keys:
        entry = auths[key]
        if not isinstance(entry, dict):
            raise CredentialsError(f"{path}: auths entry {key!r} is not an object")
        found = _decode_entry(path, key, entry)
        if found is not None:
            return found
    return None


def _decode_entry(path: Path, key: str, entry: Mapping[str, Any]) -> Credentials | None:
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise CredentialsError(f"{path}: auths entry {key!r} has an invalid 'auth' value (not base64 user:password)") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"{path}: auths entry {key!r} has an invalid 'auth' value (no ':' separator)")
    token = str(entry.get("identitytoken") or "")
    if token:
        return Credentials(username=username, identity_token=token)
    if username or password:
        return Credentials(username=username, password=password)
    return None


def _encode_entry(credentials: Credentials) -> dict[str, str]:
    entry = {"auth": base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()}
    if credentials.identity_token:
        entry["identitytoken"] = credentials.identity_token
    return entry


def _drop_host(auths: dict[str, Any], host: str) -> bool:
    doomed = [key for key in auths if registry_hostname(key) == host]
    for key in doomed:
        del auths[key]
    return bool(doomed)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replaces `path` atomically (fsutil.atomic_write) with mode 0600; follows a symlinked config."""
    target = path.resolve() if path.is_symlink() else path
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(target, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    except OSError as err:
        raise CredentialsError(f"cannot write {target}: {err.strerror or type(err).__name__}") from err
