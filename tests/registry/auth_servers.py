"""Real registries behind real auth for tests: htpasswd Basic, a Docker-Hub-like token server, and TLS.

All three run Debian's docker-registry (tests/registry/registry_server.py) on a free loopback port:
- `start_basic_registry`: `auth.htpasswd` with bcrypt hashes (distribution accepts only bcrypt).
- `start_token_registry`: `auth.token` trusting a certificate made here; `TokenServer` is a threaded
  http.server on loopback that issues ES256 JWTs carrying that certificate in `x5c`, and decides access
  as Docker Hub's auth service does: users own the namespace named after them (pull, push, delete),
  everyone (anonymous too) may pull `public/*`, anything else is silently left out of the token (the
  registry then answers 401 insufficient_scope). Wrong passwords get 401. GET with Basic auth and
  the OAuth2 POST (password and refresh_token grants) are both served, and every request is recorded.
- `start_tls_registry`: HTTPS with a server certificate for 127.0.0.1/localhost from a test CA.
Every handle is an `AuthRegistry` with the same attributes, so pull/push tests can be parametrized
over all of them: host, url, user, password, namespace (a repository prefix the user may push to),
ca_path and certs_dir (None without TLS), credentials, and transport(**kwargs).
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from imagekit.registry.credentials import Credentials
from imagekit.registry.transport import Transport
from tests.registry.registry_server import RegistryServer, start_registry
from tests.registry.serving import serve, shut

USER = "alice"
PASSWORD = "alice-Secret-pw-4711"
OTHER_USER = "bob"
OTHER_PASSWORD = "bob-Secret-pw-0815"
SHORT_USER = "shorty"  # gets tokens that live 0.5 s (the JWT says 1 s: its times are whole seconds): for expiry tests
SHORT_PASSWORD = "shorty-Secret-pw-42"
USERS = {USER: PASSWORD, OTHER_USER: OTHER_PASSWORD, SHORT_USER: SHORT_PASSWORD}
PUBLIC_NAMESPACE = "public"
SERVICE = "imagekit-test-registry"
ISSUER = "imagekit-test-token-server"


@dataclass
class AuthRegistry:
    """A running registry and what a client needs to use it."""

    server: RegistryServer
    user: str | None = None
    password: str | None = None
    namespace: str = USER
    ca_path: Path | None = None
    certs_dir: Path | None = None
    token_server: TokenServer | None = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def credentials(self) -> Credentials | None:
        return Credentials(self.user, self.password) if self.user and self.password else None

    def transport(self, **kwargs: Any) -> Transport:
        """A Transport with this registry's credentials and CA; kwargs override (e.g. credentials=None)."""
        kwargs.setdefault("credentials", self.credentials)
        if self.certs_dir is not None:
            kwargs.setdefault("certs_dir", self.certs_dir)
        return Transport(self.host, **kwargs)

    def stop(self) -> None:
        self.server.stop()
        if self.token_server is not None:
            self.token_server.stop()


# -- keys and certificates --------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None, *, ca: bool, sans: list[x509.GeneralName] | None = None
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_test_ca(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost: returns (ca.crt, server.crt, server.key)."""
    import ipaddress

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("imagekit test CA", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_cert = _certificate("127.0.0.1", server_key, ("imagekit test CA", ca_key), ca=False, sans=sans)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = (workdir / "ca.crt", workdir / "server.crt", workdir / "server.key")
    paths[0].write_bytes(_pem(ca_cert))
    paths[1].write_bytes(_pem(server_cert))
    paths[2].write_bytes(_key_pem(server_key))
    return paths


# -- the token server -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenRequestRecord:
    """What one token request asked for and who asked (None: anonymous)."""

    method: str
    account: str | None
    scopes: list[str]
    status: int
    token: str = field(default="", repr=False)  # what was issued, so leak tests can look for it


@dataclass
class TokenServer:
    """A Docker-Hub-like token service on loopback; `realm` is its URL, `requests` what it was asked."""

    users: dict[str, str]
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    expires_in: dict[str, float] = field(default_factory=lambda: {SHORT_USER: 0.5})
    default_expires_in: int = 300
    requests: list[TokenRequestRecord] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.cert = _certificate("imagekit test token signer", self.key, None, ca=True)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        serve(self._httpd)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/token"

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(_pem(self.cert))
        return path

    def stop(self) -> None:
        shut(self._httpd)

    def issue_refresh_token(self, user: str) -> str:
        token = "rt-" + secrets.token_hex(16)
        self.refresh_tokens[token] = user
        return token

    def granted(self, account: str | None, scope: str) -> dict[str, Any] | None:
        """The access entry for `scope` that `account` gets: the intersection with what it may do."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not name:
            return None
        namespace = name.split("/", 1)[0]
        allowed: set[str] = set()
        if account is not None and namespace == account:
            allowed = {"pull", "push", "delete"}
        elif namespace == PUBLIC_NAMESPACE:
            allowed = {"pull"}
        wanted = [a for a in actions.split(",") if a in allowed]
        return {"type": kind, "name": name, "actions": wanted} if wanted else None

    def jwt(self, account: str | None, scopes: list[str]) -> tuple[str, float]:
        now = int(time.time())
        lifetime = self.expires_in.get(account or "", self.default_expires_in)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        access = [entry for entry in (self.granted(account, s) for s in scopes) if entry]
        claims = {
            "iss": ISSUER,
            "sub": account or "",
            "aud": SERVICE,
            "exp": now + math.ceil(lifetime),
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", lifetime

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: tests read `requests` instead
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                account, ok = self._basic_account()
                self._answer("GET", account, ok, query.get("scope", []))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                grant = form.get("grant_type", [""])[0]
                scopes = " ".join(form.get("scope", [])).split()
                if grant == "refresh_token":
                    account = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
                    self._answer("POST", account, account is not None, scopes)
                elif grant == "password":
                    user, password = form.get("username", [""])[0], form.get("password", [""])[0]
                    ok = server.users.get(user) == password
                    self._answer("POST", user if ok else None, ok, scopes)
                else:
                    self._json(400, {"error": "unsupported_grant_type"})

            def _basic_account(self) -> tuple[str | None, bool]:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None, True
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return None, False
                return user, server.users.get(user) == password

            def _answer(self, method: str, account: str | None, ok: bool, scopes: list[str]) -> None:
                if not ok:
                    with server._lock:
                        server.requests.append(TokenRequestRecord(method, None, list(scopes), 401))
                    self._json(401, {"details": "incorrect username or password"}, {"WWW-Authenticate": 'Basic realm="token"'})
                    return
                token, lifetime = server.jwt(account, scopes)
                with server._lock:
                    server.requests.append(TokenRequestRecord(method, account, list(scopes), 200, token))
                issued = datetime.datetime.now(datetime.timezone.utc).isoformat()
                self._json(200, {"token": token, "access_token": token, "expires_in": lifetime, "issued_at": issued})

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


# -- the registries ---------------------------------------------------------------------------------


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt hashes (cost 4: the minimum, to keep each request fast)."""
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}" for user, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_basic_registry(workdir: Path) -> AuthRegistry:
    workdir.mkdir(parents=True, exist_ok=True)
    htpasswd = write_htpasswd(workdir / "htpasswd", USERS)
    server = start_registry(workdir, {"auth": {"htpasswd": {"realm": "imagekit-basic", "path": str(htpasswd)}}})
    return AuthRegistry(server, USER, PASSWORD)


def start_token_registry(workdir: Path) -> AuthRegistry:
    workdir.mkdir(parents=True, exist_ok=True)
    tokens = TokenServer(dict(USERS))
    bundle = tokens.write_bundle(workdir / "token-signer.crt")
    auth = {"token": {"realm": tokens.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    try:
        server = start_registry(workdir, {"auth": auth})
    except BaseException:
        tokens.stop()
        raise
    return AuthRegistry(server, USER, PASSWORD, token_server=tokens)


def start_tls_registry(workdir: Path) -> AuthRegistry:
    ca, cert, key = make_test_ca(workdir / "pki")
    server = start_registry(workdir, {"http": {"tls": {"certificate": str(cert), "key": str(key)}}}, scheme="https")
    certs_dir = workdir / "certs.d"
    (certs_dir / server.host).mkdir(parents=True)
    (certs_dir / server.host / "ca.crt").write_bytes(ca.read_bytes())
    return AuthRegistry(server, ca_path=ca, certs_dir=certs_dir)
