"""A loopback HTTP proxy in front of a real registry that injects faults on matching requests.

Faults are armed with `proxy.inject(Fault(...))`: each matches a method and a path regex and fires
`times` times, then the proxy forwards faithfully again. Kinds:
  corrupt   forward, but flip one byte in the middle of the body
  truncate  forward the headers (with the full Content-Length), half the body, then close
  drop      close the connection without answering
  status    answer `status` (500, 429 ...) with `headers` (e.g. Retry-After) and a registry error body
  digest    forward, but with a wrong Docker-Content-Digest header
  replace   answer `status` with `headers` and `body` instead of the registry's answer
  norange   forward without the Range header (the registry then sends the whole blob, 200)
  slow      forward after `delay` seconds (to observe how many requests run at once)
Every request is logged in `proxy.requests` as (method, path, headers) for assertions, and
`proxy.peak` is the most requests that were in flight at once. With `prefix`, the proxy serves the
registry below that path (as a mirror URL with a path is served) and answers 404 elsewhere.
"""

from __future__ import annotations

import http.client
import http.server
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from tests.registry.serving import serve, shut

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
_CHUNK = 1 << 20


@dataclass
class Fault:
    kind: str
    path: str = ".*"
    method: str = "GET"
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and re.search(self.path, path) is not None


class FaultProxy:
    """Threaded proxy on a free loopback port; `host` is `127.0.0.1:PORT` for references."""

    def __init__(self, upstream: str, prefix: str = "") -> None:
        self.upstream = upstream
        self.prefix = prefix
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fired: list[tuple[str, str, str]] = []
        self.inflight = 0
        self.peak = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.fired.clear()
            self.peak = 0

    def take(self, method: str, path: str, headers: dict[str, str]) -> Fault | None:
        with self._lock:
            self.requests.append((method, path, headers))
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    self.fired.append((fault.kind, method, path))
                    return fault
        return None

    def entered(self, delta: int) -> None:
        with self._lock:
            self.inflight += delta
            self.peak = max(self.peak, self.inflight)

    def stop(self) -> None:
        shut(self.server)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        self.owner.entered(1)
        try:
            self._serve()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (an upload it cancelled): nothing to answer
        finally:
            self.owner.entered(-1)

    def _serve(self) -> None:
        body = self._body()
        if len(body) < int(self.headers.get("Content-Length") or 0):  # the client gave up mid-body
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items()}
        fault = self.owner.take(self.command, self.path, headers)
        prefix = self.owner.prefix
        if not self.path.startswith(prefix + "/"):
            fault = Fault("replace", status=404, body=b"404 page not found", headers={"Content-Type": "text/plain"})
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind in ("status", "replace"):
            payload = fault.body or b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
            self.send_response(fault.status)
            for key, value in fault.headers.items():
                self.send_header(key, value)
            if "Content-Type" not in fault.headers:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        upstream = http.client.HTTPConnection(self.owner.upstream, timeout=60)
        try:
            forward = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            if fault is not None and fault.kind == "norange":
                forward = {k: v for k, v in forward.items() if k.lower() != "range"}
            upstream.request(self.command, self.path.removeprefix(prefix), body=body or None, headers=forward)
            response = upstream.getresponse()
            self._relay(response, fault)
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse, fault: Fault | None) -> None:
        kind = fault.kind if fault else ""
        length = response.getheader("Content-Length")
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() in _HOP_BY_HOP or (key.lower() == "docker-content-digest" and kind == "digest"):
                continue
            self.send_header(key, value)
        if kind == "digest":
            self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
        if length is None and self.command != "HEAD":
            data = response.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.end_headers()
        if self.command == "HEAD" or length is None:
            return
        total = int(length)
        cut = total // 2 if kind == "truncate" else total
        flip = total // 2 if kind == "corrupt" else -1
        sent = 0
        while sent < cut:
            chunk = response.read(min(_CHUNK, cut - sent))
            if not chunk:
                break
            if sent <= flip < sent + len(chunk):
                mutable = bytearray(chunk)
                mutable[flip - sent] ^= 0xFF
                chunk = bytes(mutable)
            self.wfile.write(chunk)
            sent += len(chunk)
        if kind == "truncate":
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle
