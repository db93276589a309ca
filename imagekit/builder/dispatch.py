"""Instructions that only edit the image config: each returns the new StageState with an
`empty_layer` history entry, written where docker (BuildKit) writes it, with BuildKit's
`created_by` text.

RUN, COPY and ADD make layers and live in the builder; FROM starts a stage. ARG adds no history
entry in an image built by docker when nothing uses it; like buildah, imagekit records none.

Imports: stdlib, builderfile, imagekit.errors, imagekit.config, imagekit.builder.state.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import signal

from builderfile import instructions as bf
from imagekit.builder.state import StageState
from imagekit.errors import BuildError

_SIGNALS = {name[3:] for name in dir(signal) if name.startswith("SIG") and not name.startswith("SIG_")}


def apply(state: StageState, instruction: bf.Instruction, created: str) -> StageState:
    """`instruction` applied to `state`; BuildError for a value docker refuses (it gets the line added)."""
    handler = _HANDLERS.get(type(instruction))
    if handler is None:
        raise BuildError(f"{type(instruction).__name__.upper()} is not supported")
    return handler(state, instruction, created)


def _history(state: StageState, text: str, created: str, **changes: object) -> StageState:
    config = state.config.with_history(created, text, empty_layer=True)
    return dataclasses.replace(state, config=config, **changes)  # type: ignore[arg-type]


def _env(state: StageState, env: bf.Env, created: str) -> StageState:
    state = dataclasses.replace(state, config=state.config.with_env(env.pairs))
    return _history(state, "ENV " + " ".join(f"{k}={v}" for k, v in env.pairs), created)


def _arg(state: StageState, arg: bf.Arg, created: str) -> StageState:
    args = dict(state.args)
    args.update({name: value for name, value in arg.pairs if value is not None})
    return dataclasses.replace(state, args=args)


def _label(state: StageState, label: bf.Label, created: str) -> StageState:
    state = dataclasses.replace(state, config=state.config.with_labels(label.pairs))
    return _history(state, "LABEL " + " ".join(f"{k}={v}" for k, v in label.pairs), created)


def _expose(state: StageState, expose: bf.Expose, created: str) -> StageState:
    state = dataclasses.replace(state, config=state.config.with_exposed_ports(expose.ports))
    return _history(state, "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in expose.ports) + "]", created)


def _volume(state: StageState, volume: bf.Volume, created: str) -> StageState:
    if any(not path for path in volume.paths):
        raise BuildError("VOLUME specified can not be an empty string")
    state = dataclasses.replace(state, config=state.config.with_volumes(volume.paths))
    return _history(state, f"VOLUME [{' '.join(volume.paths)}]", created)


def _user(state: StageState, user: bf.User, created: str) -> StageState:
    state = dataclasses.replace(state, config=state.config.with_user(user.user))
    return _history(state, f"USER {user.user}", created)


def _workdir(state: StageState, workdir: bf.Workdir, created: str) -> StageState:
    path = posixpath.normpath(posixpath.join(state.config.working_dir or "/", workdir.path))
    path = "/" + path.lstrip("/")
    state = dataclasses.replace(state, config=state.config.with_working_dir(path))
    return _history(state, f"WORKDIR {path}", created)


def _command(state: StageState, line: bf.CommandLine) -> list[str]:
    if line.shell_form:
        return [*state.config.shell_or_default(), " ".join(line.command)]
    return list(line.command)


def _cmd(state: StageState, cmd: bf.Cmd, created: str) -> StageState:
    argv = _command(state, cmd)
    state = dataclasses.replace(state, config=state.config.with_cmd(argv), cmd_set=True)
    return _history(state, f"CMD {json.dumps(argv)}", created)


def _entrypoint(state: StageState, entrypoint: bf.Entrypoint, created: str) -> StageState:
    argv = _command(state, entrypoint)
    config = state.config.with_entrypoint(argv)
    if not state.cmd_set:  # BuildKit: an ENTRYPOINT resets a CMD inherited from the base image
        config = config.with_cmd(None)
    state = dataclasses.replace(state, config=config)
    return _history(state, f"ENTRYPOINT {json.dumps(argv)}", created)


def _shell(state: StageState, shell: bf.Shell, created: str) -> StageState:
    state = dataclasses.replace(state, config=state.config.with_shell(shell.shell))
    return _history(state, f"SHELL {json.dumps(list(shell.shell))}", created)


def _stopsignal(state: StageState, stop: bf.Stopsignal, created: str) -> StageState:
    name = stop.signal.upper().removeprefix("SIG")
    if not (stop.signal.isdigit() or name in _SIGNALS or name.startswith("RTMIN") or name.startswith("RTMAX")):
        raise BuildError(f"STOPSIGNAL {stop.signal}: invalid signal")
    state = dataclasses.replace(state, config=state.config.with_stop_signal(stop.signal))
    return _history(state, f"STOPSIGNAL {stop.signal}", created)


def _healthcheck(state: StageState, check: bf.Healthcheck, created: str) -> StageState:
    health: dict[str, object] = {"Test": list(check.test)}
    for key, seconds in (("Interval", check.interval), ("Timeout", check.timeout),
                         ("StartPeriod", check.start_period), ("StartInterval", check.start_interval)):
        if seconds:
            health[key] = int(round(seconds * 1e9))
    if check.retries:
        health["Retries"] = check.retries
    state = dataclasses.replace(state, config=state.config.with_healthcheck(health))
    return _history(state, f"HEALTHCHECK {json.dumps(health)}", created)


def _onbuild(state: StageState, onbuild: bf.Onbuild, created: str) -> StageState:
    return dataclasses.replace(state, config=state.config.with_onbuild((*state.config.onbuild, onbuild.expression)))


def _maintainer(state: StageState, maintainer: bf.Maintainer, created: str) -> StageState:
    state = dataclasses.replace(state, config=state.config.with_author(maintainer.name))
    return _history(state, f"MAINTAINER {maintainer.name}", created)


_HANDLERS = {
    bf.Env: _env,
    bf.Arg: _arg,
    bf.Label: _label,
    bf.Expose: _expose,
    bf.Volume: _volume,
    bf.User: _user,
    bf.Workdir: _workdir,
    bf.Cmd: _cmd,
    bf.Entrypoint: _entrypoint,
    bf.Shell: _shell,
    bf.Stopsignal: _stopsignal,
    bf.Healthcheck: _healthcheck,
    bf.Onbuild: _onbuild,
    bf.Maintainer: _maintainer,
}
