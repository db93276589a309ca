"""`call(rootfs, fn, *args)`: a Python function run over a mounted rootfs, with nothing mounted on the host.

The builder needs the merged view of an overlay without running anything in it: COPY writes files
into it (so overlayfs records copy-ups and whiteouts in the upper dir) and USER reads its
/etc/passwd. A forked child unshares only its mount namespace, mounts the rootfs on an empty
temporary directory there and calls `fn(path, *args)`; the mount dies with the child. A caller
that is not root gets a user namespace mapping it to root first (then `fn` runs as that root:
what it creates belongs to the caller outside). There is no pivot_root: `fn` sees host paths too and must resolve paths inside `path` safely itself.

The result travels back pickled; an ImagekitError raised by `fn` is re-raised in the caller with
its class, message and attributes; anything else becomes a one-line SandboxError. The child has
only the calling thread: `fn` must not need locks other threads of the caller may hold.

Imports: stdlib, imagekit.errors, imagekit.sandbox.{linux,mounts,process,spec}.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from imagekit.errors import ImagekitError, SandboxError
from imagekit.sandbox import linux, mounts, process
from imagekit.sandbox.spec import Rootfs

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any, NoReturn, TypeVar

    T = TypeVar("T")


def call(rootfs: Rootfs, fn: Callable[..., T], *args: Any) -> T:
    """Returns fn(root_path, *args) computed in a child where `root_path` shows the mounted rootfs."""
    import pickle  # here: `imagekit run` imports the sandbox and seldom calls this
    import shutil
    import tempfile

    where = tempfile.mkdtemp(prefix="imagekit-rootfs-")
    try:
        read_end, write_end = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no mutate (as != 0 the test's own process runs the child and exits 0: a false survivor)
            os.close(read_end)
            _child(rootfs, where, fn, args, write_end)
        os.close(write_end)
        try:
            with open(read_end, "rb") as pipe:
                data = pipe.read()
        finally:
            os.waitpid(pid, 0)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    if not data:
        raise SandboxError(f"sandbox: {_name(fn)} died without an answer")
    kind, *payload = pickle.loads(data)
    if kind == "ok":
        return payload[0]  # type: ignore[no-any-return]
    if kind == "raise":
        cls, message, attributes = payload
        err = cls.__new__(cls)
        Exception.__init__(err, message)
        err.__dict__.update(attributes)
        raise err
    raise SandboxError(payload[0])


def _child(rootfs: Rootfs, where: str, fn: Callable[..., Any], args: tuple[Any, ...], report: int) -> NoReturn:
    import pickle  # imported by call() already

    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        answer: tuple[Any, ...]
        try:
            _mount(rootfs, where)
        except (OSError, SandboxError) as err:
            answer = ("error", process.describe(err))
        else:
            answer = _answer(fn, where, args)
        try:
            data = pickle.dumps(answer)
        except Exception as err:  # noqa: BLE001 - whatever fails to pickle is reported, not raised in a child
            data = pickle.dumps(("error", f"sandbox: {_name(fn)}: cannot send the result back: {err}"))
        with open(report, "wb") as pipe:
            pipe.write(data)
    finally:
        os._exit(0)


def _answer(fn: Callable[..., Any], where: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    import pickle  # imported by call() already

    try:
        return ("ok", fn(where, *args))
    except ImagekitError as err:
        attributes = dict(err.__dict__)
        try:
            pickle.dumps(attributes)
        except Exception:  # noqa: BLE001 - attributes that cannot travel are dropped, the class and message do
            attributes = {}
        return ("raise", type(err), str(err), attributes)
    except Exception as err:  # noqa: BLE001 - a bug in fn becomes one line in the caller, not a traceback here
        return ("error", f"sandbox: {_name(fn)}: {type(err).__name__}: {' '.join(str(err).split())}")


def _mount(rootfs: Rootfs, where: str) -> None:
    if os.geteuid() == 0:
        linux.unshare(linux.CLONE_NEWNS)
    else:  # rootless: root of a user namespace that maps the caller, which may mount overlayfs
        linux.unshare_as_root(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
    root = mounts.root(rootfs)
    if rootfs.readonly:
        linux.mount_setattr(root, linux.MOUNT_ATTR_RDONLY)
    target = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        linux.move_mount(root, target)
    finally:
        os.close(target)
        os.close(root)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
