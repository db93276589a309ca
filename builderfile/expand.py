"""Variable expansion of a Builderfile's instructions, at the moments BuildKit applies it.

Owns the scoping rules: global ARGs (before the first FROM) are visible to FROM only; each stage
starts a fresh ARG scope, where `ARG NAME` without a default inherits the global value; build args
override defaults; ENV beats ARG of the same name and takes effect from the next instruction (so
`ENV a=1 b=$a` gives b the old a); RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are never expanded
(the shell does that at run time). Stdlib only; must not import imagekit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from builderfile.errors import ExpansionError, Warning
from builderfile.instructions import (
    Add,
    Arg,
    Builderfile,
    Copy,
    Env,
    Expose,
    Instruction,
    Label,
    Run,
    SourceContent,
    Stage,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from builderfile.shell import Lex

#: The global args BuildKit defines on its own (usable in FROM without an ARG line).
PREDEFINED_ARGS = frozenset({
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE",
})
_UNDEFINED_ARG_URL = "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/"

# Heredoc bodies are scripts: only $VAR is replaced, quotes stay (BuildKit's ExpandRaw lexer).
_RAW = Lex(skip_process_quotes=True)


class _Scope:
    """The variables one instruction sees: stage ARGs overlaid by ENV."""

    def __init__(self, lex: Lex, line: int, variables: Mapping[str, str]) -> None:
        self.lex = lex
        self.line = line
        self.variables = variables

    def word(self, text: str) -> str:
        try:
            return self.lex.process_word(text, self.variables)
        except ExpansionError as err:
            raise ExpansionError(err.message, self.line) from None

    def words(self, texts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.word(text) for text in texts)

    def raw(self, text: str) -> str:
        try:
            return _RAW.process_word(text, self.variables)
        except ExpansionError as err:
            raise ExpansionError(err.message, self.line) from None


def expand(builderfile: Builderfile, build_args: Mapping[str, str] | None = None,
           predefined: Mapping[str, str] | None = None) -> Builderfile:
    """A copy of `builderfile` with every expandable word expanded; raises ExpansionError with the line.

    `build_args` are `--build-arg` values; `predefined` are the automatic global args such as
    TARGETPLATFORM or BUILDARCH. Variables a base image's ENV sets are not known here: a builder
    expands each stage with `expand_stage` once it has its base image.
    """
    lex = Lex(builderfile.escape)
    build_args = dict(build_args or {})
    global_args, meta_args = _global_args(builderfile, lex, build_args, predefined)
    stages = tuple(_expand_stage(stage, lex, global_args, build_args, {}) for stage in builderfile.stages)
    return replace(builderfile, stages=stages, meta_args=tuple(meta_args))


def expand_stage(builderfile: Builderfile, index: int, build_args: Mapping[str, str] | None = None,
                 predefined: Mapping[str, str] | None = None, base_env: Mapping[str, str] | None = None) -> Stage:
    """Stage `index` expanded as BuildKit expands it when it dispatches the stage: the base image's
    environment (`base_env`) is visible to every word, and ENV and ARG of the stage override it."""
    lex = Lex(builderfile.escape)
    build_args = dict(build_args or {})
    global_args, _ = _global_args(builderfile, lex, build_args, predefined)
    return _expand_stage(builderfile.stages[index], lex, global_args, build_args, dict(base_env or {}))


def global_args(builderfile: Builderfile, build_args: Mapping[str, str] | None = None,
                predefined: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of the ARGs declared before the first FROM (and the predefined ones), as FROM sees them."""
    return _global_args(builderfile, Lex(builderfile.escape), dict(build_args or {}), predefined)[0]


def _global_args(builderfile: Builderfile, lex: Lex, build_args: Mapping[str, str],
                 predefined: Mapping[str, str] | None) -> tuple[dict[str, str], list[Arg]]:
    global_args: dict[str, str] = dict(predefined or {})
    meta_args = []
    for arg in builderfile.meta_args:
        scope = _Scope(lex, arg.line, global_args)
        pairs = []
        for name, default in arg.pairs:
            name = scope.word(name)
            value = build_args.get(name, scope.word(default) if default is not None else None)
            if value is not None:
                global_args[name] = value
            pairs.append((name, value))
        meta_args.append(replace(arg, pairs=tuple(pairs)))
    return global_args, meta_args


def _expand_stage(stage: Stage, lex: Lex, global_args: Mapping[str, str], build_args: Mapping[str, str],
                  base_env: dict[str, str]) -> Stage:
    scope = _Scope(lex, stage.start.line, global_args)
    start = replace(stage.start, base=scope.word(stage.start.base), platform=scope.word(stage.start.platform))
    args: dict[str, str] = {}
    env: dict[str, str] = base_env
    out: list[Instruction] = []
    for instruction in stage.instructions:
        scope = _Scope(lex, instruction.line, {**args, **env})
        if isinstance(instruction, Arg):
            pairs = []
            for name, default in instruction.pairs:
                name = scope.word(name)
                value = scope.word(default) if default is not None else global_args.get(name)
                value = build_args.get(name, value)
                if value is not None:
                    args[name] = value
                pairs.append((name, value))
            out.append(replace(instruction, pairs=tuple(pairs)))
            continue
        expanded = _expand_one(instruction, scope)
        if isinstance(expanded, Env):
            env.update(expanded.pairs)
        out.append(expanded)
    return replace(stage, start=start, instructions=tuple(out))


def _expand_one(instruction: Instruction, scope: _Scope) -> Instruction:
    """One instruction with the words BuildKit expands replaced; others are returned unchanged."""
    if isinstance(instruction, (Env, Label)):
        return replace(instruction, pairs=tuple((scope.word(k), scope.word(v)) for k, v in instruction.pairs))
    if isinstance(instruction, (Copy, Add)):
        contents = tuple(
            SourceContent(c.path, scope.raw(c.data) if c.expand else c.data, c.expand) for c in instruction.contents
        )
        changes: dict[str, object] = {
            "sources": scope.words(instruction.sources), "dest": scope.word(instruction.dest), "contents": contents,
            "chown": scope.word(instruction.chown), "chmod": scope.word(instruction.chmod),
            "excludes": scope.words(instruction.excludes),
        }
        if isinstance(instruction, Copy):
            changes["from_"] = scope.word(instruction.from_)
        else:
            changes["checksum"] = scope.word(instruction.checksum)
        return replace(instruction, **changes)
    if isinstance(instruction, Expose):
        return replace(instruction, ports=scope.words(instruction.ports))
    if isinstance(instruction, Volume):
        return replace(instruction, paths=scope.words(instruction.paths))
    if isinstance(instruction, User):
        return replace(instruction, user=scope.word(instruction.user))
    if isinstance(instruction, Workdir):
        return replace(instruction, path=scope.word(instruction.path))
    if isinstance(instruction, Stopsignal):
        return replace(instruction, signal=scope.word(instruction.signal))
    if isinstance(instruction, Run) and instruction.mounts:
        return replace(instruction, mounts=tuple(_expand_mount(m, scope) for m in instruction.mounts))
    return instruction


def _expand_mount(spec: str, scope: _Scope) -> str:
    # BuildKit splits the CSV first and expands each value, so a variable cannot add fields.
    parts = []
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        parts.append(key + sep + scope.word(value) if sep else part)
    return ",".join(parts)


class _Lookups(dict[str, str]):
    """Variables for the lexer that remember each name looked up and not found."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.missing: list[str] = []

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if name not in self and name not in self.missing:
            self.missing.append(name)
        return super().get(name, default)


def undeclared_in_from(builderfile: Builderfile) -> list[Warning]:
    """BuildKit's UndefinedArgInFrom lint: a FROM using a variable that no global ARG declares
    (and that is not one of BuildKit's predefined args) expands to nothing, which is rarely meant."""
    lex = Lex(builderfile.escape)
    declared = {name: "" for arg in builderfile.meta_args for name, _ in arg.pairs}
    declared.update(dict.fromkeys(PREDEFINED_ARGS, ""))
    found = []
    for stage in builderfile.stages:
        lookups = _Lookups(declared)
        for word in (stage.start.base, stage.start.platform):
            try:
                lex.process_word(word, lookups)
            except ExpansionError:
                continue  # expand() reports it as an error
        found.extend(
            Warning(f"FROM argument {name!r} is not declared (UndefinedArgInFrom)", stage.start.line, _UNDEFINED_ARG_URL)
            for name in lookups.missing
        )
    return found


def stage_base(builderfile: Builderfile, stage: Stage) -> Stage | str:
    """What a stage builds on: an earlier stage (by name, case-insensitively) or an image reference."""
    for earlier in builderfile.stages[: stage.index]:
        if earlier.name and earlier.name == stage.start.base.lower():
            return earlier
    return stage.start.base



def expand_word(builderfile: Builderfile, word: str, variables: Mapping[str, str]) -> str:
    """One word (a FROM base, a `--from` name) expanded with `variables` and the file's escape character."""
    return Lex(builderfile.escape).process_word(word, variables)
