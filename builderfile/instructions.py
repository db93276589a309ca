"""Syntax nodes -> typed instructions and build stages, validated as BuildKit's instructions package does.

Owns one frozen dataclass per instruction, per-instruction flags (unknown, duplicate, misplaced or
valueless flags are errors naming the line), stages (`FROM ... AS name`, lookup by index or name)
and the global ARGs before the first FROM. Messages say what was wrong and what was expected, e.g.
`COPY needs at least two arguments: a source and a destination`. Variable expansion lives in
`builderfile.expand`. Stdlib only; must not import imagekit.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from builderfile._go import go_duration, go_lower
from builderfile.errors import BuilderfileError, ExpansionError, InstructionError, ParseError, Warning
from builderfile.flags import BOOL, STRING, STRINGS, Flag, Flags
from builderfile.syntax import Document, Heredoc, Node, must_parse_heredoc, parse

_VALID_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")


@dataclass(frozen=True, slots=True)
class Instruction:
    """What every instruction has: its source lines and the logical line as written."""

    line: int
    end_line: int
    original: str


@dataclass(frozen=True, slots=True)
class From(Instruction):
    """`FROM [--platform=P] BASE [AS NAME]`; `name` is lowercased as BuildKit does, "" when absent."""

    base: str
    name: str = ""
    platform: str = ""


@dataclass(frozen=True, slots=True)
class CommandLine(Instruction):
    """RUN, CMD and ENTRYPOINT: `command` is the exec-form argv, or one shell string when `shell_form`."""

    command: tuple[str, ...]
    shell_form: bool
    files: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, slots=True)
class Run(CommandLine):
    """`RUN [--mount=...] [--network=...] [--security=...] [--device=...] command`."""

    mounts: tuple[str, ...] = ()
    network: str = ""
    security: str = ""
    devices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cmd(CommandLine):
    """`CMD command`: the default command of the image."""


@dataclass(frozen=True, slots=True)
class Entrypoint(CommandLine):
    """`ENTRYPOINT command`; an empty exec form clears the entrypoint."""


@dataclass(frozen=True, slots=True)
class Env(Instruction):
    """`ENV k=v ...` (or the legacy `ENV k v`): pairs in order."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Label(Instruction):
    """`LABEL k=v ...`: pairs in order."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Arg(Instruction):
    """`ARG k[=default] ...`: a None default means declared without a value."""

    pairs: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class Expose(Instruction):
    """`EXPOSE port[/proto] ...` (sorted as BuildKit stores them)."""

    ports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Volume(Instruction):
    """`VOLUME path ...` or `VOLUME ["path", ...]`."""

    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class User(Instruction):
    """`USER user[:group]`."""

    user: str


@dataclass(frozen=True, slots=True)
class Workdir(Instruction):
    """`WORKDIR path`."""

    path: str


@dataclass(frozen=True, slots=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: inline file `path` with `data` (chomped when `<<-`)."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True, slots=True)
class Copy(Instruction):
    """`COPY [--from=S] [--chown=U] [--chmod=M] [--link] [--parents] [--exclude=P] src... dest`."""

    sources: tuple[str, ...]
    dest: str
    contents: tuple[SourceContent, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Add(Instruction):
    """`ADD [--chown] [--chmod] [--link] [--keep-git-dir] [--checksum] [--unpack] [--exclude] src... dest`."""

    sources: tuple[str, ...]
    dest: str
    contents: tuple[SourceContent, ...] = ()
    chown: str = ""
    chmod: str = ""
    link: bool = False
    keep_git_dir: bool | None = None
    checksum: str = ""
    unpack: bool | None = None
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Shell(Instruction):
    """`SHELL ["executable", "param", ...]` (JSON form only)."""

    shell: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Stopsignal(Instruction):
    """`STOPSIGNAL signal`."""

    signal: str


@dataclass(frozen=True, slots=True)
class Healthcheck(Instruction):
    """`HEALTHCHECK NONE` (test == ("NONE",)) or `HEALTHCHECK [opts] CMD ...` (test starts CMD or CMD-SHELL).

    Durations are seconds; 0 means "not set".
    """

    test: tuple[str, ...]
    interval: float = 0.0
    timeout: float = 0.0
    start_period: float = 0.0
    start_interval: float = 0.0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class Onbuild(Instruction):
    """`ONBUILD INSTRUCTION`: the trigger, already validated, and its text for the image config."""

    expression: str
    trigger: Instruction


@dataclass(frozen=True, slots=True)
class Maintainer(Instruction):
    """`MAINTAINER name` (deprecated in favour of a label)."""

    name: str


@dataclass(frozen=True, slots=True)
class Stage:
    """One build stage: its FROM and the instructions after it, with its index in the file."""

    index: int
    start: From
    instructions: tuple[Instruction, ...] = ()

    @property
    def name(self) -> str:
        return self.start.name


@dataclass(frozen=True, slots=True)
class Builderfile:
    """A validated Builderfile: global ARGs (before the first FROM) and the stages in order."""

    stages: tuple[Stage, ...]
    meta_args: tuple[Arg, ...] = ()
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)

    def stage(self, ref: str | int) -> Stage:
        """The stage named `ref` (case-insensitive) or at index `ref`; KeyError names what was asked."""
        if isinstance(ref, int) or ref.isdigit():
            index = int(ref)
            if 0 <= index < len(self.stages):
                return self.stages[index]
            raise KeyError(f"no build stage with index {index} (there are {len(self.stages)})")
        for stage in self.stages:
            if stage.name and stage.name == go_lower(ref):
                return stage
        raise KeyError(f"no build stage named {ref!r}")


_FLAGS: dict[str, dict[str, Flag]] = {
    "from": {"platform": STRING},
    "run": {"mount": STRINGS, "network": STRING, "security": STRING, "device": STRINGS},
    "copy": {"chown": STRING, "from": STRING, "chmod": STRING, "link": BOOL, "exclude": STRINGS, "parents": BOOL},
    "add": {"chown": STRING, "chmod": STRING, "link": BOOL, "keep-git-dir": BOOL, "checksum": STRING,
            "unpack": BOOL, "exclude": STRINGS},
    "healthcheck": {"interval": STRING, "timeout": STRING, "start-period": STRING, "start-interval": STRING,
                    "retries": STRING},
}
_NETWORKS = ("default", "none", "host")
_SECURITIES = ("sandbox", "insecure")


# --- one instruction ------------------------------------------------------------------------------


def _needs(keyword: str, what: str) -> InstructionError:
    return InstructionError(f"{keyword} needs {what}")


def _command_line(node: Node) -> tuple[tuple[str, ...], bool, tuple[Heredoc, ...]]:
    return node.args, not node.json, node.heredocs


def _parse_from(node: Node, flags: Flags) -> From:
    args = node.args
    if len(args) == 3 and go_lower(args[1]) == "as":
        name = go_lower(args[2])
        if not _VALID_STAGE_NAME.match(name):
            raise InstructionError(
                f"FROM stage name {args[2]!r} is invalid: it must start with a letter and contain only "
                "letters, digits, '-', '_' and '.'"
            )
    elif len(args) == 1:
        name = ""
    elif not args:
        raise _needs("FROM", "a base image: FROM IMAGE [AS NAME]")
    else:
        raise InstructionError(f"FROM takes an image and optionally AS NAME, but got {len(args)} arguments: {' '.join(args)}")
    return From(node.start_line, node.end_line, node.original, args[0], name, flags.string("platform"))


def _parse_run(node: Node, flags: Flags) -> Run:
    network, security = flags.string("network"), flags.string("security")
    if network and network not in _NETWORKS:
        raise InstructionError(f"RUN --network={network} is not supported: use one of {', '.join(_NETWORKS)}")
    if security and security not in _SECURITIES:
        raise InstructionError(f"RUN --security={security} is not supported: use one of {', '.join(_SECURITIES)}")
    for mount in flags.strings("mount"):
        _check_mount(mount)
    command, shell_form, files = _command_line(node)
    return Run(node.start_line, node.end_line, node.original, command, shell_form, files,
               flags.strings("mount"), network, security, flags.strings("device"))


_MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")


def _check_mount(spec: str) -> None:
    """Checks the shape of a --mount value (key=value CSV with a known type); values expand later."""
    kind = "bind"
    for part in spec.split(","):
        key, _, value = part.partition("=")
        if go_lower(key.strip()) == "type":
            kind = go_lower(value.strip())
    if kind not in _MOUNT_TYPES:
        raise InstructionError(f"RUN --mount type {kind!r} is not supported: use one of {', '.join(_MOUNT_TYPES)}")


def _parse_pairs(node: Node, keyword: str) -> tuple[tuple[str, str], ...]:
    args = node.args
    if not args:
        raise _needs(keyword, "at least one NAME=VALUE pair")
    pairs = []
    for i in range(0, len(args) - 2, 3):
        if not args[i]:
            raise InstructionError(f"{keyword} has an empty name in {args[i]}={args[i + 1]}: names can not be blank")
        pairs.append((args[i], args[i + 1]))
    return tuple(pairs)


def _parse_arg(node: Node) -> Arg:
    if not node.args:
        raise _needs("ARG", "a name: ARG NAME[=DEFAULT]")
    pairs: list[tuple[str, str | None]] = []
    for word in node.args:
        name, sep, value = word.partition("=")
        if sep and not name:
            raise InstructionError(f"ARG has an empty name in {word!r}: names can not be blank")
        pairs.append((name, value if sep else None))
    return Arg(node.start_line, node.end_line, node.original, tuple(pairs))


def _sources_and_dest(node: Node, keyword: str) -> tuple[tuple[str, ...], str, tuple[SourceContent, ...]]:
    if len(node.args) < 2:
        raise _needs(keyword, "at least two arguments: a source and a destination")
    *sources, dest = node.args
    if must_parse_heredoc(dest) is not None:
        raise InstructionError(f"{keyword} cannot take a heredoc as its destination ({dest})")
    docs = {doc.name: doc for doc in node.heredocs}
    paths, contents = [], []
    for source in sources:
        heredoc = must_parse_heredoc(source)
        if heredoc is None:
            paths.append(source)
            continue
        data = docs[heredoc.name].content if heredoc.name in docs else ""
        if heredoc.chomp:
            data = re.sub(r"(?m)^\t+", "", data)
        contents.append(SourceContent(heredoc.name, data, heredoc.expand))
    return tuple(paths), dest, tuple(contents)


# BuildKit's --chmod: octal, or (dockerfile 1.14) symbolic modes such as u+x,go=rX.
_CHMOD = re.compile(r"[0-7]{1,4}|[ugoa]*[-+=][rwxXst]*(?:,[ugoa]*[-+=][rwxXst]*)*\Z")


def _chmod(flags: Flags, keyword: str) -> str:
    """The --chmod value, refused here unless it holds a variable (then only the build can tell)."""
    mode = flags.string("chmod")
    if mode and "$" not in mode and not _CHMOD.fullmatch(mode):
        raise InstructionError(f"{keyword} --chmod={mode} is not a file mode: use octal digits (0755) or symbolic modes (u+x)")
    return mode


def _parse_copy(node: Node, flags: Flags) -> Copy:
    sources, dest, contents = _sources_and_dest(node, "COPY")
    return Copy(node.start_line, node.end_line, node.original, sources, dest, contents, flags.string("from"),
                flags.string("chown"), _chmod(flags, "COPY"), flags.bool("link"), flags.bool("parents"),
                flags.strings("exclude"))


def _parse_add(node: Node, flags: Flags) -> Add:
    sources, dest, contents = _sources_and_dest(node, "ADD")
    return Add(node.start_line, node.end_line, node.original, sources, dest, contents, flags.string("chown"),
               _chmod(flags, "ADD"), flags.bool("link"), flags.optional_bool("keep-git-dir"), flags.string("checksum"),
               flags.optional_bool("unpack"), flags.strings("exclude"))


def _interval(flags: Flags, name: str) -> float:
    value = flags.string(name)
    if not value:
        return 0.0
    try:
        seconds = go_duration(value)
    except ValueError:
        raise InstructionError(f"HEALTHCHECK --{name}={value} is not a duration: use e.g. 30s, 1m30s, 500ms") from None
    if 0 < seconds < 0.001 or seconds < 0:
        raise InstructionError(f"HEALTHCHECK --{name}={value} is too short: at least 1ms")
    return seconds


def _parse_healthcheck(node: Node, flags: Flags) -> Healthcheck:
    if not node.args:
        raise _needs("HEALTHCHECK", "NONE or CMD followed by a command")
    kind, args = node.args[0].upper(), node.args[1:]
    where = (node.start_line, node.end_line, node.original)
    if kind == "NONE":
        if args:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(*where, ("NONE",))
    if kind != "CMD":
        raise InstructionError(f"HEALTHCHECK type {node.args[0]!r} is unknown: use CMD or NONE")
    if not args:
        raise _needs("HEALTHCHECK CMD", "a command")
    retries = 0
    if flags.string("retries"):
        try:
            retries = int(flags.string("retries"), 10)
        except ValueError:
            raise InstructionError(f"HEALTHCHECK --retries={flags.string('retries')} is not a whole number") from None
        if retries < 0:
            raise InstructionError(f"HEALTHCHECK --retries cannot be negative ({retries})")
    test = ("CMD" if node.json else "CMD-SHELL", *args)
    return Healthcheck(*where, test, _interval(flags, "interval"), _interval(flags, "timeout"),
                       _interval(flags, "start-period"), _interval(flags, "start-interval"), retries)


def _parse_shell(node: Node) -> Shell:
    if not node.args:
        raise _needs("SHELL", 'a JSON array: SHELL ["executable", "param"]')
    if not node.json:
        raise InstructionError(f'SHELL requires the JSON form, e.g. SHELL ["/bin/sh", "-c"], not: {node.original}')
    return Shell(node.start_line, node.end_line, node.original, node.args)


def _exactly_one(node: Node, keyword: str, what: str) -> str:
    if len(node.args) != 1:
        raise _needs(keyword, f"exactly one argument: {what}")
    return node.args[0]


def _parse_onbuild(node: Node) -> Onbuild:
    if node.sub is None:
        raise _needs("ONBUILD", "an instruction to trigger, e.g. ONBUILD RUN make")
    trigger_word = node.sub.cmd.upper()
    if trigger_word == "ONBUILD":
        raise InstructionError("ONBUILD cannot trigger another ONBUILD")
    if trigger_word in ("MAINTAINER", "FROM"):
        raise InstructionError(f"ONBUILD cannot trigger {trigger_word}")
    sub = Node(node.sub.cmd, node.sub.flags, node.sub.args, node.sub.json, node.sub.original, node.start_line,
               node.end_line, None, node.heredocs)
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    return Onbuild(node.start_line, node.end_line, node.original, expression, parse_instruction(sub))


_SIMPLE: dict[str, Callable[[Node], Instruction]] = {
    "env": lambda n: Env(n.start_line, n.end_line, n.original, _parse_pairs(n, "ENV")),
    "label": lambda n: Label(n.start_line, n.end_line, n.original, _parse_pairs(n, "LABEL")),
    "arg": _parse_arg,
    "cmd": lambda n: Cmd(n.start_line, n.end_line, n.original, *_command_line(n)),
    "entrypoint": lambda n: Entrypoint(n.start_line, n.end_line, n.original, *_command_line(n)),
    "expose": lambda n: Expose(n.start_line, n.end_line, n.original, _ports(n)),
    "volume": lambda n: Volume(n.start_line, n.end_line, n.original, _volumes(n)),
    "user": lambda n: User(n.start_line, n.end_line, n.original, _exactly_one(n, "USER", "the user (and group)")),
    "workdir": lambda n: Workdir(n.start_line, n.end_line, n.original, _exactly_one(n, "WORKDIR", "the directory")),
    "maintainer": lambda n: Maintainer(n.start_line, n.end_line, n.original, _exactly_one(n, "MAINTAINER", "the name")),
    "shell": _parse_shell,
}
_WITH_FLAGS: dict[str, Callable[[Node, Flags], Instruction]] = {
    "from": _parse_from,
    "run": _parse_run,
    "copy": _parse_copy,
    "add": _parse_add,
    "healthcheck": _parse_healthcheck,
}
KEYWORDS = sorted({*_SIMPLE, *_WITH_FLAGS, "onbuild", "stopsignal"})


def _ports(node: Node) -> tuple[str, ...]:
    if not node.args:
        raise _needs("EXPOSE", "at least one port, e.g. EXPOSE 80/tcp")
    return tuple(sorted(node.args))


def _volumes(node: Node) -> tuple[str, ...]:
    if not node.args:
        raise _needs("VOLUME", "at least one path")
    paths = tuple(path.strip() for path in node.args)
    if "" in paths:
        raise InstructionError("VOLUME paths can not be empty strings")
    return paths


def parse_instruction(node: Node) -> Instruction:
    """One syntax node -> its typed instruction; raises InstructionError carrying the node's line."""
    keyword = node.keyword
    try:
        if keyword == "stopsignal":  # BuildKit never parses STOPSIGNAL's flags
            return Stopsignal(node.start_line, node.end_line, node.original, _exactly_one(node, "STOPSIGNAL", "the signal"))
        if keyword in _WITH_FLAGS:
            if keyword == "healthcheck" and node.args[:1] and node.args[0].upper() == "NONE":
                flags = Flags("HEALTHCHECK", (), {})  # BuildKit ignores flags on HEALTHCHECK NONE
            else:
                flags = Flags(keyword.upper(), node.flags, _FLAGS[keyword])
            return _WITH_FLAGS[keyword](node, flags)
        simple = _SIMPLE.get(keyword)
        if simple is None and keyword != "onbuild":
            hint = difflib.get_close_matches(keyword, KEYWORDS, n=1)
            suggestion = f" (did you mean {hint[0].upper()}?)" if hint else ""
            raise InstructionError(f"unknown instruction: {node.cmd}{suggestion}")
        if keyword != "arg":  # BuildKit never parses ARG's flags either
            Flags(keyword.upper(), node.flags, {})
        if simple is None:
            return _parse_onbuild(node)
        return simple(node)
    except InstructionError as err:
        raise InstructionError(err.message, node.start_line) from None


# --- the whole file -------------------------------------------------------------------------------


def _assemble(document: Document, errors: list[BuilderfileError], warnings: list[Warning]) -> Builderfile:
    """Instructions into stages; problems go to `errors` (or `warnings`), the rest is still assembled."""
    meta_args: list[Arg] = []
    stages: list[tuple[From, list[Instruction]]] = []
    names: dict[str, int] = {}
    for node in document.nodes:
        try:
            instruction = parse_instruction(node)
        except InstructionError as err:
            errors.append(err)
            continue
        if isinstance(instruction, From):
            if instruction.name:
                if instruction.name in names:  # BuildKit builds it (lint rule DuplicateStageName)
                    warnings.append(Warning(
                        f"FROM stage name {instruction.name!r} is already used by the stage on line "
                        f"{stages[names[instruction.name]][0].line}; references to it mean that first stage",
                        node.start_line))
                else:
                    names[instruction.name] = len(stages)
            stages.append((instruction, []))
        elif not stages:
            if isinstance(instruction, Arg):
                meta_args.append(instruction)
            else:
                errors.append(InstructionError(
                    f"{node.cmd.upper()} comes before the first FROM: only ARG may precede FROM", node.start_line))
        else:
            _check_copy_from(instruction, len(stages) - 1, names, errors)
            stages[-1][1].append(instruction)
    if not stages and not errors:
        errors.append(InstructionError("no FROM instruction: a Builderfile needs at least one stage", 0))
    built = tuple(Stage(i, start, tuple(body)) for i, (start, body) in enumerate(stages))
    return Builderfile(built, tuple(meta_args), document.escape, dict(document.directives))


def _check_copy_from(instruction: Instruction, current: int, names: dict[str, int], errors: list[BuilderfileError]) -> None:
    """`--from` naming this stage (by index or by name) or a later index cannot be built: a cycle."""
    if not isinstance(instruction, Copy):
        return
    source = instruction.from_
    if (source.isdigit() and int(source) >= current) or names.get(go_lower(source)) == current:
        errors.append(InstructionError(
            f"COPY --from={instruction.from_} refers to the current or a later stage; use an earlier stage's index or name",
            instruction.line))


def load(text: str | bytes) -> Builderfile:
    """Parses and validates a Builderfile; raises the first error (ParseError or InstructionError)."""
    errors: list[BuilderfileError] = []
    builderfile = _assemble(parse(text), errors, [])
    if errors:
        raise errors[0]
    return builderfile


@dataclass(frozen=True, slots=True)
class Report:
    """What `check` found: errors (the Builderfile cannot be built) and warnings (BuildKit builds it anyway)."""

    errors: tuple[BuilderfileError, ...]
    warnings: tuple[Warning, ...] = ()
    builderfile: Builderfile | None = None

    def findings(self) -> list[BuilderfileError]:
        """Errors and warnings (as `warning: ...` messages) in line order, as a reader goes through the file."""
        warned = [BuilderfileError(f"warning: {w.message}", w.line) for w in self.warnings]
        return sorted([*self.errors, *warned], key=lambda finding: finding.line)


def check(text: str | bytes) -> Report:
    """Every problem of a Builderfile, each with its line: one ParseError, or all instruction errors.

    When the instructions are sound, expansion runs too (without build args), catching bad
    substitutions such as `${VAR` or `${VAR:?message}`, and FROM lines using undeclared ARGs are
    warned about (BuildKit's UndefinedArgInFrom). Text that is not UTF-8 is one error naming the
    first bad byte's offset.
    """
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return Report((ParseError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} is invalid", line),))
    try:
        document = parse(text)
    except ParseError as err:
        return Report((err,))
    errors: list[BuilderfileError] = []
    warnings: list[Warning] = list(document.warnings)
    builderfile = _assemble(document, errors, warnings)
    from builderfile.expand import expand, undeclared_in_from  # expand builds on this module

    warnings.extend(undeclared_in_from(builderfile))
    if not errors:
        try:
            expand(builderfile)
        except ExpansionError as err:
            errors.append(err)
    return Report(tuple(errors), tuple(sorted(warnings, key=lambda w: w.line)), builderfile)
