"""One RUN: its command line (shell or exec form, heredocs as BuildKit runs them), its `--mount`s and
`--network`, and the sandbox Spec that runs it on the step's snapshot.

Mounts: `type=cache` (a directory under ROOT/cache/mounts kept across builds; `sharing=locked`
serialises builds on it with a lock, `private` gives each concurrent build its own), `type=bind`
(from the context, or from another stage or image with `from=`; read-only unless `rw`, and then the
writes are thrown away), `type=tmpfs`, `type=secret` (a `--secret` file, read-only, at
/run/secrets/ID or `target`; never in a layer or the history). Mount targets and the resolv.conf and
hosts files the sandbox had to create are removed from the layer.

Imports: stdlib, builderfile, imagekit.errors, sandbox, store, users, and the build package's modules.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from builderfile import instructions as bf
from builderfile.syntax import must_parse_heredoc
from imagekit import sandbox, users
from imagekit.builder.context import BuildContext, clean_source
from imagekit.builder.copy_from import stage_sources
from imagekit.builder.options import BuildOptions
from imagekit.builder.output import BuildOutput
from imagekit.builder.state import StageState
from imagekit.errors import BuildError
from imagekit.sandbox import Mount, Rootfs, Spec
from imagekit.store import Store

#: Host files a RUN sees, as docker and buildah give them; never captured in the layer.
ETC_FILES = (("/etc/resolv.conf", "/etc/resolv.conf"), ("/etc/hosts", "/etc/hosts"))
SHEBANG_DIR = "/dev/pipes"


class RunStep:
    """Runs one RUN instruction on `rootfs` (the step's snapshot) and reports what to keep out of the layer."""

    def __init__(self, run: bf.Run, state: StageState, rootfs: Rootfs, options: BuildOptions, context: BuildContext,
                 store: Store, stage_rootfs: Callable[[str], Rootfs], output: BuildOutput) -> None:
        self.run = run
        self.state = state
        self.rootfs = rootfs
        self.options = options
        self.context = context
        self.store = store
        self.stage_rootfs = stage_rootfs
        self.output = output
        self.argv, self._script = self._command()

    def _command(self) -> tuple[list[str], tuple[str, str] | None]:
        """The argv, and (file name, content) of a heredoc script to run by its shebang, as BuildKit does."""
        run = self.run
        argv = list(run.command)
        script = None
        if run.files:
            heredoc = must_parse_heredoc(argv[0]) if len(argv) == 1 and run.shell_form else None
            if heredoc is not None:
                data = run.files[0].content
                if run.files[0].chomp:
                    data = "".join(line.lstrip("\t") for line in data.splitlines(keepends=True))
                if data.startswith("#!"):
                    script = (run.files[0].name, data)
                    return [posixpath.join(SHEBANG_DIR, run.files[0].name)], script
                argv = [data]
            else:
                argv = ["\n".join([argv[0], *(f.content + f.name for f in run.files)])]
        if run.shell_form:
            argv = list(self.state.config.shell_form(" ".join(argv)))
        return argv, script

    def history(self) -> str:
        """BuildKit's history text for the step: `RUN |N ARG=v ... argv # buildkit`."""
        args = [f"{k}={v}" for k, v in self.state.args.items()]
        prefix = [f"|{len(args)}", *args] if args else []
        return "RUN " + " ".join(prefix + self.argv) + " # buildkit"

    def execute(self) -> tuple[str, ...]:
        """Runs the command; returns the container paths to drop from the layer (created mount stubs).
        A non-zero exit is a BuildError with the status (and, under -q, the last lines of output)."""
        with contextlib.ExitStack() as stack:
            mounts = [*self._script_mount(stack), *(self._mount(spec, stack) for spec in self.run.mounts)]
            uid, gid, groups = self._user()
            network = self.run.network if self.run.network in ("none", "host") else self.options.network
            spec = Spec(
                rootfs=self.rootfs,
                argv=tuple(self.argv),
                env=self.state.run_env(),
                cwd=self.state.config.working_dir or "/",
                uid=uid,
                gid=gid,
                groups=groups,
                hostname="imagekit",
                network=network,  # type: ignore[arg-type]
                isolation=self.options.isolation,
                mounts=tuple(mounts),
                etc_files=ETC_FILES,
            )
            relay = stack.enter_context(self.output.relay())
            # Ctrl-C stops the build at once, as docker build: the step's PID 1 would ignore a forwarded SIGINT
            result = sandbox.run(spec, stdin=os.open(os.devnull, os.O_RDONLY), stdout=relay.fd, stderr=relay.fd,
                                 forward_signals=False)
            stack.close()
            if result.status != 0:
                tail = "; ".join(relay.tail) if self.output.quiet and relay.tail else ""
                what = " ".join(self.run.command)[:80]
                raise BuildError(f"RUN {what}: exit status {result.status}" + (f": {tail}" if tail else ""))
            return tuple(result.created)

    def _user(self) -> tuple[int, int, tuple[int, ...]]:
        user = self.state.config.user
        if not user:
            return 0, 0, ()
        return sandbox.call(self.rootfs, users.resolve_user, user)

    def _script_mount(self, stack: contextlib.ExitStack) -> Iterator[Mount]:
        if self._script is None:
            return iter(())
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imagekit-heredoc-")))
        name, data = self._script
        (directory / name).write_text(data)
        os.chmod(directory / name, 0o755)
        return iter((Mount(SHEBANG_DIR, "bind", str(directory), ("ro",)),))

    def _mount(self, spec: str, stack: contextlib.ExitStack) -> Mount:
        options = parse_mount(spec)
        kind = options.get("type", "bind")
        target = options.get("target") or options.get("dst") or options.get("destination") or ""
        if kind == "secret":
            return self._secret(options, target)
        if not target:
            raise BuildError(f"--mount={spec}: a target is required")
        target = posixpath.join(self.state.config.working_dir or "/", target)
        if kind == "tmpfs":
            size = options.get("size")
            return Mount(target, "tmpfs", "", (f"size={size}",) if size else ())
        if kind == "cache":
            return self._cache(options, target, stack)
        if kind == "bind":
            return self._bind(options, target, stack)
        raise BuildError(f"--mount={spec}: mount type {kind!r} is not supported (bind, cache, tmpfs, secret)")

    def _secret(self, options: dict[str, str], target: str) -> Mount:
        secret_id = options.get("id") or posixpath.basename(target)
        found = [s for s in self.options.secrets if s.id == secret_id]
        if not found:
            if options.get("required", "false").lower() in ("true", "1", ""):
                raise BuildError(f"secret {secret_id!r} is not given (pass --secret id={secret_id},src=PATH)")
            return Mount("/run/secrets/.imagekit-absent", "tmpfs", "", ("ro",))
        return Mount(target or f"/run/secrets/{secret_id}", "bind", str(found[0].source), ("ro",))

    def _cache(self, options: dict[str, str], target: str, stack: contextlib.ExitStack) -> Mount:
        cache_id = options.get("id") or target
        name = hashlib.sha256(cache_id.encode()).hexdigest()[:32]
        root = self.store.state_dir("cache") / "mounts"
        directory = root / name
        directory.mkdir(parents=True, exist_ok=True)
        sharing = options.get("sharing", "shared")
        if sharing == "locked":
            lock = stack.enter_context(open(root / f"{name}.lock", "a"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        elif sharing == "private":
            lock = stack.enter_context(open(root / f"{name}.lock", "a"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=root, prefix="private-")))
        elif sharing != "shared":
            raise BuildError(f"--mount sharing={sharing!r}: expected shared, private or locked")
        return Mount(target, "bind", str(directory), ("rw",))

    def _bind(self, options: dict[str, str], target: str, stack: contextlib.ExitStack) -> Mount:
        source = options.get("source") or options.get("src") or "/"
        writable = options.get("rw", options.get("readwrite", "false")).lower() in ("", "true", "1")
        if "from" in options:
            rootfs = self.stage_rootfs(options["from"])
            staged = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imagekit-bind-")))
            sandbox.call(rootfs, stage_sources, [source], str(staged))
            cleaned = clean_source(source)
            host = staged / cleaned if cleaned else staged
            if not host.exists() and not host.is_symlink():
                raise BuildError(f"--mount from={options['from']},source={source}: not in that stage")
        else:
            host = self.context.path_of(source)
        if writable:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imagekit-bind-rw-")))
            copy = scratch / "content"
            if host.is_dir():
                shutil.copytree(host, copy, symlinks=True)
            else:
                shutil.copy2(host, copy)
            host = copy
        return Mount(target, "bind", str(host), ("rw",) if writable else ("ro",))


def parse_mount(spec: str) -> dict[str, str]:
    """A `--mount` value as {key: value} (keys lowercased; a bare flag such as `rw` maps to "")."""
    options: dict[str, str] = {}
    for part in spec.split(","):
        key, eq, value = part.strip().partition("=")
        options[key.strip().lower()] = value.strip() if eq else ""
    return options
