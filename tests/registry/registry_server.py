"""A real CNCF distribution registry (Debian's docker-registry) on a free loopback port, for tests.

`start_registry(tmp_path, extra_config)` writes a config, starts `docker-registry serve` on port 0, waits for
the port it says it listens on to answer and returns a handle whose `stop()` ends it. Auth variants (htpasswd, token, TLS)
pass their own `auth`/`http.tls` config sections through `extra`.
"""

from __future__ import annotations

import ctypes
import json
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def _die_with_the_test_process() -> None:
    """In the registry's process before exec: SIGKILL when the test process that started it dies, so that a
    session killed before its fixtures' teardown (a mutant's timeout under `make mutation`, a SIGKILL)
    leaves no registry running."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # ctypes straight: only async-signal-safe work after fork


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RegistryServer:
    host: str  # "127.0.0.1:PORT", usable in references
    process: subprocess.Popen[bytes]
    storage: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def start_registry(workdir: Path, extra: dict[str, Any] | None = None, scheme: str = "http") -> RegistryServer:
    """Starts a registry storing under `workdir`; waits until it answers (any HTTP status counts). It binds port
    0 and logs the port the kernel gave it: a port found free beforehand (free_port) could be taken before the
    registry bound it, by a session running beside this one (`make mutation`'s workers, xdist's), and a
    connection to it then reached the other session's registry while this one exited."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = _merge(
        {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},  # info: the "listening on" line
            "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
            "http": {"addr": "127.0.0.1:0", "secret": "imagekit-test-secret"},
        },
        extra or {},
    )
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    log_path = workdir / "registry.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(["docker-registry", "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=_die_with_the_test_process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listening = _LISTENING.search(log_path.read_text(errors="replace"))
        if listening is not None:
            server = RegistryServer(f"127.0.0.1:{listening[1]}", process, workdir / "data", scheme)
            with socket.create_connection(("127.0.0.1", int(listening[1])), timeout=5):
                return server
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log_path.read_text()[-2000:]}")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise RuntimeError("docker-registry did not start within 20 s")
