"""Instructions that only edit the image config: each returns the new StageState with an
`empty_layer` history entry, written where docker (BuildKit) writes it, with BuildKit's
`created_by` text.

RUN, COPY and ADD make layers and live in the builder; FROM starts a stage. ARG adds no history
entry in an image built by docker when nothing uses it; like buildah, imagekit records none.

Imports: stdlib, builderfile, imagekit.errors, imagekit.config, imagekit.builder.state.
"""

from __future__ import annotations

import functools
import json
import signal
from collections.abc import Callable

from builderfile import instructions as bf
from imagekit import values
from imagekit.builder.state import StageState
from imagekit.config import Healthcheck, ImageConfig
from imagekit.errors import BuildError, InvalidConfigEdit

#: The comment BuildKit writes on the history entries of a Dockerfile build.
HISTORY_COMMENT = "buildkit.dockerfile.v0"

_SIGNALS = {name[3:] for name in dir(signal) if name.startswith("SIG") and not name.startswith("SIG_")}


def apply(state: StageState, instruction: bf.Instruction, created: str) -> StageState:
    """`instruction` applied to `state`; BuildError for a value docker refuses (it gets the line added)."""
    handler = _HANDLERS.get(type(instruction))
    if handler is None:
        raise BuildError(f"{type(instruction).__name__.upper()} is not supported")
    return handler(state, instruction, created)


def _history(state: StageState, text: str, created: str, config: ImageConfig | None = None, **changes: object) -> StageState:
    """`state` with `config` (default: unchanged) and an `empty_layer` history entry saying `text`."""
    config = (config or state.config).with_history(created=created, created_by=text, comment=HISTORY_COMMENT)
    return values.replace(state, config=config, **changes)  # type: ignore[arg-type]


def _edited(edit: Callable[[], ImageConfig]) -> ImageConfig:
    """An ImageConfig edit whose refusal (a bad port, an empty name) becomes the step's BuildError."""
    try:
        return edit()
    except InvalidConfigEdit as err:
        raise BuildError(str(err)) from None


def _env(state: StageState, env: bf.Env, created: str) -> StageState:
    config = state.config
    for key, value in env.pairs:
        config = _edited(functools.partial(config.with_env, key, value))
    return _history(state, "ENV " + " ".join(f"{k}={v}" for k, v in env.pairs), created, config)


def _arg(state: StageState, arg: bf.Arg, created: str) -> StageState:
    args = dict(state.args)
    args.update({name: value for name, value in arg.pairs if value is not None})
    return values.replace(state, args=args)


def _label(state: StageState, label: bf.Label, created: str) -> StageState:
    config = _edited(functools.partial(state.config.with_labels, dict(label.pairs)))
    return _history(state, "LABEL " + " ".join(f"{k}={v}" for k, v in label.pairs), created, config)


def _expose(state: StageState, expose: bf.Expose, created: str) -> StageState:
    config = _edited(functools.partial(state.config.with_exposed_ports, expose.ports))
    return _history(state, "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in expose.ports) + "]", created, config)


def _volume(state: StageState, volume: bf.Volume, created: str) -> StageState:
    config = _edited(functools.partial(state.config.with_volumes, volume.paths))
    return _history(state, f"VOLUME [{' '.join(volume.paths)}]", created, config)


def _user(state: StageState, user: bf.User, created: str) -> StageState:
    return _history(state, f"USER {user.user}", created, values.replace(state.config, user=user.user))


def _workdir(state: StageState, workdir: bf.Workdir, created: str) -> StageState:
    config = _edited(functools.partial(state.config.with_working_dir, workdir.path))
    return _history(state, f"WORKDIR {config.working_dir}", created, config)


def _command(state: StageState, line: bf.CommandLine) -> list[str]:
    if line.shell_form:
        return list(state.config.shell_form(" ".join(line.command)))
    return list(line.command)


def _cmd(state: StageState, cmd: bf.Cmd, created: str) -> StageState:
    argv = _command(state, cmd)
    return _history(state, f"CMD {json.dumps(argv)}", created, state.config.with_cmd(argv), cmd_set=True)


def _entrypoint(state: StageState, entrypoint: bf.Entrypoint, created: str) -> StageState:
    argv = _command(state, entrypoint)
    config = state.config.with_entrypoint(argv, keep_cmd=state.cmd_set)
    return _history(state, f"ENTRYPOINT {json.dumps(argv)}", created, config)


def _shell(state: StageState, shell: bf.Shell, created: str) -> StageState:
    return _history(state, f"SHELL {json.dumps(list(shell.shell))}", created, values.replace(state.config, shell=shell.shell))


def _stopsignal(state: StageState, stop: bf.Stopsignal, created: str) -> StageState:
    name = stop.signal.upper().removeprefix("SIG")
    if not (stop.signal.isdigit() or name in _SIGNALS or name.startswith("RTMIN") or name.startswith("RTMAX")):
        raise BuildError(f"STOPSIGNAL {stop.signal}: invalid signal")
    return _history(state, f"STOPSIGNAL {stop.signal}", created, values.replace(state.config, stop_signal=stop.signal))


def _healthcheck(state: StageState, check: bf.Healthcheck, created: str) -> StageState:
    health = Healthcheck(
        test=check.test,
        interval=_nanoseconds(check.interval),
        timeout=_nanoseconds(check.timeout),
        start_period=_nanoseconds(check.start_period),
        start_interval=_nanoseconds(check.start_interval),
        retries=check.retries,
    )
    config = values.replace(state.config, healthcheck=health)
    return _history(state, f"HEALTHCHECK {json.dumps(health.to_json())}", created, config)


def _nanoseconds(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _onbuild(state: StageState, onbuild: bf.Onbuild, created: str) -> StageState:
    return values.replace(state, config=values.replace(state.config, on_build=(*state.config.on_build, onbuild.expression)))


def _maintainer(state: StageState, maintainer: bf.Maintainer, created: str) -> StageState:
    return _history(state, f"MAINTAINER {maintainer.name}", created, values.replace(state.config, author=maintainer.name))


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
