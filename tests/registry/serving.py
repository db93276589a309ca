"""The tests' own HTTP servers, served from a daemon thread: `serve(server)` starts one, `shut(server)` ends
and closes it, `with serving(server)` does both around a block.

serve_forever looks for a shutdown request every `poll_interval`, 0.5 s unless told: each stop waited up to
that, a second or more per test with two servers and again for every session-wide server at the end. At
0.05 s a stop returns at once for a reader and costs a server twenty idle wake-ups a second.

Imports: stdlib only.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

POLL_INTERVAL = 0.05

Server = TypeVar("Server", bound=socketserver.BaseServer)


def serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True)
    thread.start()
    return thread


def shut(server: socketserver.BaseServer) -> None:
    server.shutdown()
    server.server_close()


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    serve(server)
    try:
        yield server
    finally:
        shut(server)
