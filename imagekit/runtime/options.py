"""What `imagekit run` is asked for, as a value, and the parsers of docker's flag syntax it comes from.

RunOptions holds the flags after parsing (`-v`, `--mount`, `--tmpfs` already turned into VolumeSpecs;
`--memory` into bytes); the CLI and `imagekit.run()` both fill one in. Parsers raise ContainerError
with docker's wording where docker has one, so every malformed flag is one line and exit 125.

Imports: stdlib, imagekit.errors, imagekit.runtime.ports (PortSpec, for type checking only: `run` without -p
must not pay for the network modules' imports).
"""

from __future__ import annotations

import os
import re

from imagekit.errors import ContainerError
from imagekit.values import field, value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Literal
    from imagekit.runtime.ports import PortSpec


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


@value
class VolumeSpec:
    """One mount asked for: `kind` "bind" (source a host path), "volume" (source a volume name, "" for an
    anonymous one) or "tmpfs"; `target` in the container; `readonly`; tmpfs `options` (size=, mode=)."""

    kind: Literal["bind", "volume", "tmpfs"]
    target: str
    source: str = ""
    readonly: bool = False
    options: tuple[str, ...] = ()


def default_network() -> Literal["bridge", "host"]:
    """The bridge as root, as docker; without root the host's network, since imagekit has no slirp4netns or
    pasta to give a rootless container a network of its own (the CLI says so in a note)."""
    return "bridge" if os.geteuid() == 0 else "host"


@value
class RunOptions:
    """The flags of `imagekit run` (see its --help); empty values mean "as the image says"."""

    image: str
    command: tuple[str, ...] = ()
    name: str = ""
    env: tuple[str, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    workdir: str = ""
    user: str = ""
    entrypoint: str | None = None
    hostname: str = ""
    #: docker's default as root: an address on the bridge imagekit0 (imagekit.runtime.network); without root,
    #: which has no bridge, the host's network (see default_network)
    network: Literal["host", "none", "bridge"] = field(default_factory=default_network)
    #: `-p` specs, parsed by imagekit.runtime.ports.parse_publish; `-P` adds the image's EXPOSEd ports. Only the bridge
    #: publishes: other networks discard them, as docker does (see discarded_ports)
    publish: tuple[PortSpec, ...] = ()
    publish_all: bool = False
    memory: int = 0
    cpus: float = 0.0
    pids_limit: int = 0
    read_only: bool = False
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    auto_remove: bool = False
    #: docker's -t: a pty as the process's stdin, stdout and stderr (its output in the log with \r\n when detached)
    tty: bool = False
    labels: dict[str, str] = field(default_factory=dict)


def discarded_ports(options: RunOptions) -> str:
    """docker's warning when -p/-P are given off the bridge, where they are discarded; "" when nothing is."""
    if options.network == "bridge" or not (options.publish or options.publish_all):
        return ""
    return f"Published ports are discarded when using {options.network} network mode"


def parse_size(text: str, what: str = "memory") -> int:
    """docker's RAMInBytes: `256m`, `1g`, `512k`, `1048576` (binary units, an optional trailing b)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ContainerError(f"invalid {what} size {text!r}: expected a number with an optional unit (b, k, m, g)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ContainerError(f"invalid argument {text!r} for --cpus: expected a number such as 0.5") from None
    if value < 0 or value != value:
        raise ContainerError(f"invalid argument {text!r} for --cpus: must be positive")
    return value


def parse_volume(text: str) -> VolumeSpec:
    """`-v SRC:DST[:ro|rw]` (SRC an absolute host path or a volume name) or `-v DST` (anonymous volume)."""
    parts = text.split(":")
    if len(parts) == 1:
        return VolumeSpec("volume", _target(parts[0], text))
    if len(parts) > 3 or not parts[0]:
        raise ContainerError(f"invalid volume specification: {text!r} (expected SRC:DST[:ro|rw])")
    source, target = parts[0], _target(parts[1], text)
    readonly = False
    if len(parts) == 3:
        modes = set(parts[2].split(","))
        if not modes <= {"ro", "rw", "z", "Z"} or {"ro", "rw"} <= modes:
            raise ContainerError(f"invalid mode {parts[2]!r} in volume specification {text!r} (expected ro or rw)")
        readonly = "ro" in modes
    if source.startswith("/"):
        return VolumeSpec("bind", target, source, readonly)
    if source.startswith("."):
        return VolumeSpec("bind", target, os.path.abspath(source), readonly)
    return VolumeSpec("volume", target, volume_name(source), readonly)


def parse_mount(text: str) -> VolumeSpec:
    """`--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..][,tmpfs-mode=..]`."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not key:
            raise ContainerError(f"invalid --mount {text!r}: empty field")
        fields[key] = value if eq else "true"
    kind = fields.pop("type", "volume")
    source = fields.pop("source", fields.pop("src", ""))
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    readonly = fields.pop("readonly", fields.pop("ro", "false")).lower() in ("true", "1")
    if not target:
        raise ContainerError(f"invalid --mount {text!r}: target is required")
    target = _target(target, text)
    if kind == "bind":
        if not source.startswith("/"):
            raise ContainerError(f"invalid --mount {text!r}: a bind source must be an absolute host path")
        spec = VolumeSpec("bind", target, source, readonly)
    elif kind == "volume":
        spec = VolumeSpec("volume", target, volume_name(source) if source else "", readonly)
    elif kind == "tmpfs":
        if source:
            raise ContainerError(f"invalid --mount {text!r}: a tmpfs takes no source")
        options = []
        if "tmpfs-size" in fields:
            options.append(f"size={parse_size(fields.pop('tmpfs-size'), 'tmpfs')}")
        if "tmpfs-mode" in fields:
            options.append(f"mode={fields.pop('tmpfs-mode')}")
        spec = VolumeSpec("tmpfs", target, "", readonly, tuple(options))
    else:
        raise ContainerError(f"invalid --mount {text!r}: type must be bind, volume or tmpfs")
    if fields:
        raise ContainerError(f"invalid --mount {text!r}: unknown field {sorted(fields)[0]!r}")
    return spec


def parse_tmpfs(text: str) -> VolumeSpec:
    """`--tmpfs DST[:OPTIONS]` (mount(8) options such as size=64m,mode=1777)."""
    target, _, options = text.partition(":")
    return VolumeSpec("tmpfs", _target(target, text), "", False, tuple(o for o in options.split(",") if o))


def volume_name(name: str) -> str:
    """A valid volume name (docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+), else ContainerError."""
    if not VOLUME_NAME.fullmatch(name):
        raise ContainerError(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


def parse_env_file(path: str) -> tuple[str, ...]:
    """docker's --env-file: KEY=VALUE lines; `#` comments and blank lines skipped; a bare KEY takes the
    value this process has (and is dropped when unset)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ContainerError(f"cannot read env file {path}: {getattr(err, 'strerror', None) or err}") from err
    words = []
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.partition("=")[0]
        if not key or any(c.isspace() for c in key):
            raise ContainerError(f"{path}:{number}: invalid variable name {key!r}")
        words.append(line)
    return parse_env(tuple(words))


def parse_env(words: tuple[str, ...]) -> tuple[str, ...]:
    """`-e K=V` as is; `-e K` takes this process's value of K (dropped when unset), as docker does."""
    out = []
    for word in words:
        key, eq, _ = word.partition("=")
        if not key:
            raise ContainerError(f"invalid environment variable {word!r}")
        if eq:
            out.append(word)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return tuple(out)


def _target(path: str, text: str) -> str:
    if not path.startswith("/"):
        raise ContainerError(f"invalid mount target in {text!r}: {path!r} is not an absolute path")
    return os.path.normpath(path)
