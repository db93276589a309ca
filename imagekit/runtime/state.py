"""Containers on disk: ROOT/containers/<id>/config.json, one record per container, and finding them.

A record is rewritten whole and atomically (fsutil.atomic_write) at each change of state: created,
running (with the supervisor's pid and the container's), exited (exit code, OOMKilled). Names are
unique: a name is taken under ROOT/containers/lock together with the directory's creation. Nothing
resident watches a container: whoever reads a record checks that a "running" one still has its
supervisor (pid and start time, so a reused pid does not count) and marks it exited (255, as docker
reports a container its daemon lost) when not — `imagekit ps` after a SIGKILLed supervisor.

Imports: stdlib, imagekit.errors, fsutil, store, layers.rootfs (remove_path).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from imagekit import values
from imagekit.errors import ContainerError, ContainerNotFound
from imagekit.fsutil import atomic_write, locked
from imagekit.layers.rootfs import remove_path
from imagekit.store import Store
from imagekit.values import field, value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any

_ID = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
LOST_EXIT_CODE = 255
_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "swift", "vivid", "witty", "zen")
_NOUNS = ("curie", "darwin", "euler", "gauss", "hopper", "lovelace", "noether", "pascal", "ritchie", "turing")


@value
class Container:
    """One container's record. `spec` is the sandbox Spec it runs (as JSON), `limits` its cgroup limits,
    `volumes` the anonymous volumes it owns (removed with it)."""

    id: str
    name: str
    image: str
    image_id: str
    argv: tuple[str, ...]
    created: str
    spec: dict[str, Any]
    limits: dict[str, Any]
    stop_signal: int
    auto_remove: bool = False
    volumes: tuple[str, ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()
    state: str = "created"
    pid: int = 0
    supervisor: int = 0
    supervisor_start: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    #: "bridge" for a container on the bridge network (its Spec says "host" and joins a namespace at start);
    #: "" means as spec["network"] says
    network: str = ""
    #: the -p/-P specs (ports.PortSpec as dicts), published at each start
    publish: tuple[dict[str, Any], ...] = ()
    #: while it runs on the bridge: its address and published ports (ports.Binding as dicts)
    ip: str = ""
    ports: tuple[dict[str, Any], ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self) -> dict[str, Any]:
        return values.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Container:
        known = {f.name for f in values.fields(cls)}
        given = {k: v for k, v in obj.items() if k in known}
        for name in ("argv", "volumes", "mounts", "publish", "ports"):  # JSON gives lists back
            given[name] = tuple(given.get(name, ()))
        return cls(**given)


def now() -> str:
    """RFC 3339 in UTC with microseconds, as docker writes times (through `time`: datetime is not loaded to
    start a container)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns // 1000 % 1_000_000:06d}Z"


class Containers:
    """The containers of a store: create, save, load, find, list and delete their records."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.root / "containers"

    def dir(self, container_id: str) -> Path:
        return self.root / container_id

    def log_path(self, container_id: str) -> Path:
        return self.dir(container_id) / "container.log"

    @contextmanager
    def reserve(self, name: str) -> Iterator[tuple[str, str]]:
        """A new (id, name) with its directory made, under the names lock; the directory goes again if
        the block raises. An empty `name` gets a generated one, as docker's adjective_scientist."""
        root = self.store.state_dir("containers")
        if name and not _NAME.fullmatch(name):
            raise ContainerError(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        with locked(root / "lock"):
            taken = {c.name for c in self.all(refresh=False)}
            if name in taken:
                found = next(c for c in self.all(refresh=False) if c.name == name)
                raise ContainerError(f'the container name "/{name}" is already in use by container "{found.id}": '
                                     "remove (or rename) that container to be able to reuse that name")
            if not name:
                name = _generated_name(taken)
            container_id = os.urandom(32).hex()  # secrets.token_hex, without importing random and hmac at start-up
            self.dir(container_id).mkdir(mode=0o700)
            try:
                yield container_id, name
            except BaseException:
                self.delete(container_id)
                raise

    def save(self, container: Container) -> None:
        try:
            atomic_write(self.dir(container.id) / "config.json", json.dumps(container.to_json(), indent=1).encode())
        except OSError as err:
            raise ContainerError(f"cannot write the state of container {container.short_id}: {err.strerror}") from err

    def load(self, container_id: str, *, refresh: bool = True) -> Container:
        path = self.dir(container_id) / "config.json"
        try:
            container = Container.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {container_id}") from None
        except (OSError, ValueError, TypeError) as err:
            raise ContainerError(f"the state of container {container_id[:12]} is unreadable: {err}") from err
        return self.refresh(container) if refresh else container

    def refresh(self, container: Container) -> Container:
        """Marks a "running" container whose supervisor is gone as exited (see the module docstring)."""
        if container.state != "running" or supervisor_alive(container.supervisor, container.supervisor_start):
            return container
        lost = values.replace(container, state="exited", exit_code=LOST_EXIT_CODE, pid=0, finished_at=now(),
                                   error="its supervisor process died", ip="", ports=())
        self.save(lost)
        return lost

    def all(self, *, refresh: bool = True) -> list[Container]:
        """Every container, newest first."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if _ID.fullmatch(entry.name) and (entry / "config.json").is_file():
                try:
                    found.append(self.load(entry.name, refresh=refresh))
                except ContainerNotFound:  # removed meanwhile
                    continue
        return sorted(found, key=lambda c: c.created, reverse=True)

    def find(self, text: str) -> Container:
        """The container named `text`, or whose ID is `text` or starts with it (unique), as docker finds them."""
        containers = self.all(refresh=False)
        for container in containers:
            if text in (container.id, container.name):
                return self.refresh(container)
        matches = [c for c in containers if text and re.fullmatch(r"[0-9a-f]+", text) and c.id.startswith(text)]
        if len(matches) == 1:
            return self.refresh(matches[0])
        if len(matches) > 1:
            raise ContainerError(f"multiple containers match {text!r}: give more of the ID")
        raise ContainerNotFound(f"no such container: {text}")

    def delete(self, container_id: str) -> None:
        """Removes the container's directory; an error leaves the rest where it is, as shutil.rmtree's
        ignore_errors did (rootfs.remove_path instead: loading shutil is a tenth of `imagekit run --rm`)."""
        with suppress(OSError):
            remove_path(self.dir(container_id))


def process_start(pid: int) -> int:
    """The start time of `pid` (clock ticks since boot, /proc/PID/stat field 22); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2 :].split()[19])


def supervisor_alive(pid: int, start: int) -> bool:
    return pid > 0 and process_start(pid) == start


def _generated_name(taken: set[str]) -> str:
    while True:
        name = f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}"
        if name not in taken:
            return name
        name = f"{name}_{os.urandom(2).hex()}"
        if name not in taken:
            return name


def _pick(words: tuple[str, ...]) -> str:
    """A word chosen at random from the OS's entropy (secrets.choice without its imports; the bias of a
    32-bit draw over a dozen words is below 1e-8)."""
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]
