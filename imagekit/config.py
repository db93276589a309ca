"""The image config as a value: ImageConfig and History, read from and written to the JSON docker writes,
with the edits `imagekit import --change` and the builder's instructions make.

The JSON is image-spec config.md as docker and BuildKit write it: top-level `architecture`, `os`,
`variant`, `created`, `author`, `config` (the container config, with Go's field names: `Env`, `Cmd`,
`ExposedPorts`...), `rootfs` (`diff_ids`) and `history`. Empty fields are left out as Go's `omitempty`
leaves them out, except `config`, which is always written. Keys imagekit does not know (`container_config`,
`docker_version`, `Hostname`, `os.version`...) are kept untouched in `extra`, so a base image's config
read, edited and written back loses nothing. A config from a registry is untrusted: a field of the wrong
type is InvalidManifest; `null` counts as absent, as Go reads it.

Edits return new values and behave as docker's dispatchers do (moby builder/dockerfile, BuildKit
dockerfile2llb): ENV replaces a variable of the same name in place, EXPOSE expands a port range into
ports, ENTRYPOINT clears an inherited CMD, WORKDIR resolves against the current one. An edit docker
refuses raises InvalidConfigEdit; the caller adds where it came from.

Imports: stdlib, imagekit.errors and imagekit.oci only.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from imagekit.errors import InvalidConfigEdit, InvalidManifest
from imagekit.oci import canonical_json, json_field, json_string_map, json_strings
from imagekit.values import field, replace, value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any

#: The shell of shell-form CMD, ENTRYPOINT and RUN on Linux when no SHELL is set.
DEFAULT_SHELL = ("/bin/sh", "-c")
_PORT = re.compile(r"([0-9]+)(?:-([0-9]+))?(?:/([A-Za-z]+))?")
_PROTOCOLS = ("tcp", "udp", "sctp")
_WHAT = "image config"


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def _present(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` without null values: Go reads `"Env": null` as an absent field."""
    return {k: v for k, v in obj.items() if v is not None}


def _json_object(obj: Any, what: str) -> dict[str, Any]:
    """`obj` checked to be a JSON object, without its null values; else InvalidManifest naming `what`."""
    if not isinstance(obj, dict):
        raise InvalidManifest(f"{what} is not a JSON object")
    return _present(obj)


def _unknown(obj: Mapping[str, Any], known: Iterable[str]) -> Mapping[str, Any]:
    """The keys of `obj` imagekit does not model, kept as read (nulls included) for writing back."""
    skip = set(known)
    return MappingProxyType({k: v for k, v in obj.items() if k not in skip})


def _object(obj: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = json_field(_present(obj), key, dict, what, required=False)
    return value or {}


def _keys(obj: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    """ExposedPorts and Volumes: a JSON object whose keys are what matters (the values are `{}`)."""
    return tuple(_object(obj, key, what))


@value
class History:
    """One entry of the config's history: how a layer (or an edit without one, `empty_layer`) was made."""

    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False
    author: str = ""
    extra: Mapping[str, Any] = field(default_factory=_empty)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for key, value in (("created", self.created), ("created_by", self.created_by), ("comment", self.comment), ("author", self.author)):
            if value:
                out[key] = value
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_json(cls, obj: Any, what: str = "history entry") -> History:
        present = _json_object(obj, what)
        strings = ("created", "created_by", "comment", "author")
        return cls(
            **{key: json_field(present, key, str, what, required=False) or "" for key in strings},
            empty_layer=bool(json_field(present, "empty_layer", bool, what, required=False)),
            extra=_unknown(obj, (*strings, "empty_layer")),
        )


@value
class Healthcheck:
    """The container's HEALTHCHECK: `test` as docker stores it (`["CMD", ...]`, `["CMD-SHELL", cmd]`,
    `["NONE"]`), durations in nanoseconds (0: the runtime's default)."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0
    extra: Mapping[str, Any] = field(default_factory=_empty)

    _KEYS = (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"), ("start_interval", "StartInterval"), ("retries", "Retries"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.test:
            out["Test"] = list(self.test)
        for attr, key in self._KEYS:
            if getattr(self, attr):
                out[key] = getattr(self, attr)
        return out

    @classmethod
    def from_json(cls, obj: Any, what: str = "Healthcheck") -> Healthcheck:
        present = _json_object(obj, what)
        durations = {attr: json_field(present, key, int, what, required=False) or 0 for attr, key in cls._KEYS}
        return cls(test=json_strings(present, "Test", what), **durations, extra=_unknown(obj, ("Test", *(key for _, key in cls._KEYS))))


@value
class ImageConfig:
    """An image config (image-spec config.md, docker's container config inside `config`), as a value.

    Empty means unset: an empty `cmd` is written as no `Cmd` at all, as docker writes it.
    """

    architecture: str = ""
    os: str = ""
    variant: str = ""
    created: str = ""
    author: str = ""
    # the container config ("config")
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=_empty)
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    shell: tuple[str, ...] = ()
    on_build: tuple[str, ...] = ()
    args_escaped: bool = False
    # rootfs and history
    diff_ids: tuple[str, ...] = ()
    history: tuple[History, ...] = ()
    #: Unknown keys of the container config and of the top level, kept as read.
    config_extra: Mapping[str, Any] = field(default_factory=_empty)
    extra: Mapping[str, Any] = field(default_factory=_empty)

    # --- JSON ----------------------------------------------------------------------------------------------
    _CONTAINER_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild", "ArgsEscaped")
    _TOP_KEYS = ("architecture", "os", "variant", "created", "author", "config", "rootfs", "history")

    def container_config(self) -> dict[str, Any]:
        """The `config` object: docker's container config with empty fields left out."""
        out: dict[str, Any] = dict(self.config_extra)
        strings = (("User", self.user), ("WorkingDir", self.working_dir), ("StopSignal", self.stop_signal))
        lists = (("Env", self.env), ("Entrypoint", self.entrypoint), ("Cmd", self.cmd), ("Shell", self.shell), ("OnBuild", self.on_build))
        out.update({key: value for key, value in strings if value})
        out.update({key: list(value) for key, value in lists if value})
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.volumes:
            out["Volumes"] = {volume: {} for volume in self.volumes}
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_json()
        if self.args_escaped:
            out["ArgsEscaped"] = True
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for key in ("architecture", "os", "variant", "created", "author"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out["config"] = self.container_config()
        out["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        if self.history:
            out["history"] = [entry.to_json() for entry in self.history]
        return out

    def to_bytes(self) -> bytes:
        """The config blob: canonical JSON, so the same config always has the same digest (image ID)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, obj: Any, what: str = _WHAT) -> ImageConfig:
        """Reads an untrusted config object; a known field of the wrong type is InvalidManifest naming it."""
        top = _json_object(obj, what)
        where = f"{what} (container config)"
        container = top.get("config", {})
        inner = _json_object(container, where)
        rootfs = _object(top, "rootfs", what)
        history = json_field(top, "history", list, what, required=False) or []
        healthcheck = inner.get("Healthcheck")
        return cls(
            **{key: json_field(top, key, str, what, required=False) or "" for key in ("architecture", "os", "variant", "created", "author")},
            user=json_field(inner, "User", str, where, required=False) or "",
            exposed_ports=_keys(inner, "ExposedPorts", where),
            env=json_strings(inner, "Env", where),
            entrypoint=json_strings(inner, "Entrypoint", where),
            cmd=json_strings(inner, "Cmd", where),
            volumes=_keys(inner, "Volumes", where),
            working_dir=json_field(inner, "WorkingDir", str, where, required=False) or "",
            labels=json_string_map(inner, "Labels", where),
            stop_signal=json_field(inner, "StopSignal", str, where, required=False) or "",
            healthcheck=None if healthcheck is None else Healthcheck.from_json(healthcheck, f"{where} Healthcheck"),
            shell=json_strings(inner, "Shell", where),
            on_build=json_strings(inner, "OnBuild", where),
            args_escaped=bool(json_field(inner, "ArgsEscaped", bool, where, required=False)),
            diff_ids=json_strings(_present(rootfs), "diff_ids", f"{what} rootfs"),
            history=tuple(History.from_json(entry, f"{what} history entry {i}") for i, entry in enumerate(history)),
            config_extra=_unknown(container, cls._CONTAINER_KEYS),
            extra=_unknown(obj, cls._TOP_KEYS),
        )

    # --- edits ---------------------------------------------------------------------------------------------
    def with_env(self, key: str, value: str) -> ImageConfig:
        """ENV key=value: replaces the variable of that name where it stands, else appends (docker's addEnv)."""
        if not key or "=" in key:
            raise InvalidConfigEdit(f"invalid environment variable name {key!r}")
        entry = f"{key}={value}"
        names = [item.partition("=")[0] for item in self.env]
        if key in names:
            env = tuple(entry if name == key else item for name, item in zip(names, self.env))
        else:
            env = (*self.env, entry)
        return replace(self, env=env)

    def with_labels(self, labels: Mapping[str, str]) -> ImageConfig:
        """LABEL: merges `labels` over the existing ones (a later value for a key wins)."""
        if any(not key for key in labels):
            raise InvalidConfigEdit("a label needs a non-empty name")
        return replace(self, labels=MappingProxyType({**self.labels, **labels}))

    def with_exposed_ports(self, specs: Iterable[str]) -> ImageConfig:
        """EXPOSE: each spec is `port` or `start-end`, optionally `/tcp`, `/udp` or `/sctp` (tcp by default);
        a range becomes one entry per port, as docker's nat.ParsePortSpecs expands it."""
        ports = list(self.exposed_ports)
        for spec in specs:
            for port in parse_port_spec(spec):
                if port not in ports:
                    ports.append(port)
        return replace(self, exposed_ports=tuple(ports))

    def with_volumes(self, paths: Iterable[str]) -> ImageConfig:
        """VOLUME: adds mount points (kept as given; docker refuses only an empty one)."""
        volumes = list(self.volumes)
        for path in paths:
            if not path.strip():
                raise InvalidConfigEdit("VOLUME needs a non-empty path")
            if path not in volumes:
                volumes.append(path)
        return replace(self, volumes=tuple(volumes))

    def with_cmd(self, argv: Iterable[str]) -> ImageConfig:
        """CMD: the default arguments (after the entrypoint), already in exec form (see shell_form)."""
        return replace(self, cmd=tuple(argv))

    def with_entrypoint(self, argv: Iterable[str], *, keep_cmd: bool = False) -> ImageConfig:
        """ENTRYPOINT: also clears CMD unless a CMD was set earlier in the same build stage or change list
        (`keep_cmd`), so a base image's CMD never becomes arguments of a new entrypoint (BuildKit's
        dispatchEntrypoint: `if !d.cmdSet { Cmd = nil }`)."""
        return replace(self, entrypoint=tuple(argv), cmd=self.cmd if keep_cmd else ())

    def with_working_dir(self, path: str) -> ImageConfig:
        """WORKDIR: an absolute path is kept as given; a relative one resolves against the current working
        directory (`/` when unset), as moby's normalizeWorkdir does."""
        if not path:
            raise InvalidConfigEdit("WORKDIR needs a path")
        if not posixpath.isabs(path):
            path = "/" + posixpath.normpath(posixpath.join("/", self.working_dir, path)).lstrip("/")
        return replace(self, working_dir=path)

    def shell_form(self, command: str) -> tuple[str, ...]:
        """A shell-form command as exec form: the SHELL (default `/bin/sh -c`) followed by `command`."""
        return (*(self.shell or DEFAULT_SHELL), command)

    def with_layer(self, diff_id: str, history: History) -> ImageConfig:
        """Appends a layer: its diff_id to rootfs and `history` (marked as having a layer) to the history."""
        return replace(self, diff_ids=(*self.diff_ids, diff_id), history=(*self.history, replace(history, empty_layer=False)))

    def with_history(self, *, created: str = "", created_by: str = "", comment: str = "", author: str = "", empty_layer: bool = True) -> ImageConfig:
        """Appends a history entry; by default one without a layer (ENV, CMD... change only the config)."""
        entry = History(created=created, created_by=created_by, comment=comment, author=author, empty_layer=empty_layer)
        return replace(self, history=(*self.history, entry))


def parse_port_spec(spec: str) -> tuple[str, ...]:
    """`80`, `53/udp`, `8000-8002/tcp` -> the ExposedPorts keys (`80/tcp`...); InvalidConfigEdit for
    anything else (docker refuses `EXPOSE abc`, port 0 and ranges that run backwards)."""
    match = _PORT.fullmatch(spec.strip())
    problem = "expected a port or range 1-65535, optionally /tcp, /udp or /sctp"
    if match is None:
        raise InvalidConfigEdit(f"invalid port {spec!r}: {problem}")
    first, last, protocol = int(match.group(1)), int(match.group(2) or match.group(1)), (match.group(3) or "tcp").lower()
    if protocol not in _PROTOCOLS:
        raise InvalidConfigEdit(f"invalid port {spec!r}: unknown protocol {protocol!r} (tcp, udp or sctp)")
    if not 1 <= first <= last <= 65535:
        raise InvalidConfigEdit(f"invalid port {spec!r}: {problem}")
    return tuple(f"{port}/{protocol}" for port in range(first, last + 1))
