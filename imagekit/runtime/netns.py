"""Network namespaces from threads: run code, sockets and tools in one without moving the caller, and make one.

`within(netns, fn)` runs fn() on a thread that joined `netns` ("" is this process's) and then ends, so sockets
it makes, and programs it starts (a child is born in its parent thread's namespace), live there: one thread is
cheaper than `nsenter` before every tool. `thread_in` is the long-lived kind (the proxies of published ports).
`pin_new(pin)` makes a new, empty network namespace and bind-mounts it on the file `pin`, as `unshare --net=PIN`
does, without a program.

Imports: stdlib, imagekit.errors, imagekit.sandbox.linux.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from imagekit.errors import NetworkError
from imagekit.sandbox import linux

T = TypeVar("T")


def within(netns: str, fn: Callable[[], T]) -> T:
    """fn() in the network namespace `netns` ("" is this process's): on a thread that joined it and then ends,
    so the caller's own threads never move. Sockets made there stay in that namespace."""
    if not netns:
        return fn()

    def joined() -> T:
        _join(netns)
        return fn()

    return _on_thread(joined)


def thread_in(netns: str, target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread (not started) that joins `netns` ("" stays) and runs target(); the threads it starts
    inherit the namespace. A namespace that cannot be joined ends the thread before target runs."""

    def body() -> None:
        _join(netns)
        target()

    return threading.Thread(target=body, name=name, daemon=True)


def links(netns: str) -> set[str]:
    """The names of the links of `netns`, through a netlink socket made there (/sys/class/net would show the
    namespace of the sysfs mount, not the thread's)."""
    return within(netns, lambda: {name for _, name in socket.if_nameindex()})


def pin_new(pin: str) -> None:
    """A new network namespace (only `lo`, down) bind-mounted on the existing file `pin`: made by a thread that
    leaves it at once, so no process lives in it and unmounting the pin ends it."""

    def make() -> None:
        linux.unshare(linux.CLONE_NEWNET)
        tree = linux.open_tree("/proc/thread-self/ns/net")
        try:
            target = os.open(pin, os.O_PATH | os.O_CLOEXEC)
            try:
                linux.move_mount(tree, target)
            finally:
                os.close(target)
        finally:
            os.close(tree)

    try:
        _on_thread(make)
    except OSError as err:
        raise NetworkError(f"cannot make a network namespace on {pin}: {err.strerror}") from err


def _on_thread(fn: Callable[[], T]) -> T:
    """fn() on a new thread, which ends after it (taking any namespace it joined along); its result or error here."""
    outcome: list[object] = []

    def body() -> None:
        try:
            outcome.append(fn())
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(err)

    thread = threading.Thread(target=body, name="netns")
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]  # type: ignore[return-value]


def _join(netns: str) -> None:
    """Moves the calling thread into `netns` ("" stays); a failure is a NetworkError naming it."""
    if netns:
        try:
            linux.setns(netns, linux.CLONE_NEWNET)
        except OSError as err:
            raise NetworkError(f"cannot enter the network namespace {netns}: {err.strerror}") from err
