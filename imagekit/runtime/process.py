"""The container's process as docker derives it from the image config and the flags of `run`.

- argv: Entrypoint + Cmd; CMD words on the command line replace Cmd; `--entrypoint E` replaces
  Entrypoint and clears the image's Cmd (`--entrypoint ""` clears both: the command line alone).
- env: PATH (docker's default when the image has none), HOSTNAME, TERM=xterm with `-t`, then the image's Env,
  then `-e` / `--env-file`, a later KEY replacing an earlier one where it stands; HOME as runc sets it when unset.
- cwd: `-w`, else WorkingDir, else /; user: `-u`, else User, else root.
- capabilities: docker's default set (less MKNOD: no device cgroup guards mknod here), adjusted by
  `--cap-add` / `--cap-drop` (ALL allowed in both, as in docker), every one with `--privileged`.

Imports: stdlib, imagekit.errors, config, sandbox (constants).
"""

from __future__ import annotations

import signal

from imagekit.config import ImageConfig
from imagekit.errors import ContainerError
from imagekit.runtime.options import RunOptions
from imagekit.sandbox.linux import CAPABILITIES
from imagekit.sandbox.process import DEFAULT_PATH
from imagekit.sandbox.spec import DEFAULT_CAPABILITIES

#: docker's 14 defaults (moby oci/caps/defaults.go) without MKNOD (see the module docstring).
RUN_CAPABILITIES = tuple(sorted({*DEFAULT_CAPABILITIES, "AUDIT_WRITE", "NET_RAW"}))


def argv(config: ImageConfig, options: RunOptions) -> tuple[str, ...]:
    """The command line docker would run; ContainerError when it is empty."""
    if options.entrypoint is not None:
        entrypoint: tuple[str, ...] = (options.entrypoint,) if options.entrypoint else ()
        cmd = options.command
    else:
        entrypoint = config.entrypoint
        cmd = options.command or config.cmd
    words = (*entrypoint, *cmd)
    if not words:
        raise ContainerError("no command specified: the image has neither Entrypoint nor Cmd; give one after the image")
    return words


def environment(config: ImageConfig, options: RunOptions, hostname: str, uid: int) -> tuple[str, ...]:
    """KEY=VALUE words in docker's order, later keys replacing earlier ones in place."""
    merged: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, **({"TERM": "xterm"} if options.tty else {})}
    for word in (*config.env, *options.env):
        key, _, value = word.partition("=")
        merged[key] = value
    merged.setdefault("HOME", "/root" if uid == 0 else "/")
    return tuple(f"{key}={value}" for key, value in merged.items())


def capabilities(options: RunOptions) -> tuple[str, ...]:
    """The bounding set: docker's defaults, adjusted by --cap-add/--cap-drop, or all with --privileged."""
    if options.privileged:
        return tuple(sorted(CAPABILITIES))
    adds = {_cap(name) for name in options.cap_add}
    drops = {_cap(name) for name in options.cap_drop}
    caps = set(RUN_CAPABILITIES)
    caps = set() if "ALL" in drops else caps - drops
    caps |= set(CAPABILITIES) if "ALL" in adds else adds - {"ALL"}
    return tuple(sorted(caps))


def stop_signal(config: ImageConfig) -> int:
    """The image's StopSignal (`SIGQUIT`, `QUIT` or a number), SIGTERM when unset."""
    return parse_signal(config.stop_signal) if config.stop_signal else int(signal.SIGTERM)


def parse_signal(text: str) -> int:
    """A signal by name (`KILL`, `SIGKILL`) or number, as `docker kill -s` takes it."""
    text = text.strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise ContainerError(f"invalid signal: {text}")
    name = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ContainerError(f"invalid signal: {text}") from None


def _cap(name: str) -> str:
    short = name.upper().removeprefix("CAP_")
    if short != "ALL" and short not in CAPABILITIES:
        raise ContainerError(f"unknown capability: {name!r}")
    return short
