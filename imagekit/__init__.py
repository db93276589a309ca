"""imagekit: a daemonless OCI image toolkit (build, move and run container images without a daemon).

`imagekit.build(...)` and `imagekit.run(...)` are the Python entry points of `imagekit build` and
`imagekit run`; each imports its machinery only when called, so `import imagekit` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any
    from imagekit.builder.build import BuiltImage
    from imagekit.runtime.handle import ContainerHandle


__version__ = "0.1.0.dev0"


def build(context: str | Path | None, *, root: str | Path | None = None, tags: tuple[str, ...] | list[str] = (),
          file: str | Path | None = None, builderfile_text: bytes | None = None, **options: Any) -> BuiltImage:
    """Builds an image as `imagekit build` does and returns it (`.id`, `.image`, `.tags`).

    `context` is the build context directory (None with `builderfile_text`: no context); `root` the
    store (default as the CLI's); other keywords are BuildOptions fields (`build_args`, `target`,
    `no_cache`, `pull`, `network`, `compression`, `labels`, `platform`, `format`, `secrets`, `quiet`,
    which defaults to True here). Base images missing from the store are pulled from their registry.
    Raises imagekit.errors.BuildError (and other ImagekitErrors) with a one-line message.
    """
    from imagekit.builder.build import Builder
    from imagekit.builder.options import BuildOptions
    from imagekit.fetch import RegistryOptions, pull_to_store
    from imagekit.store import Store

    store = Store(_root(root))
    options.setdefault("quiet", True)
    build_options = BuildOptions(
        context=Path(context) if context is not None else None,
        builderfile=Path(file) if file is not None else None,
        builderfile_text=builderfile_text,
        tags=tuple(tags),
        **options,
    )
    registry = RegistryOptions()

    def pull(ref, platform):  # type: ignore[no-untyped-def]
        return pull_to_store(ref, store, registry, platform=platform).image

    return Builder(store, build_options, pull).run()


def run(image: str, command: tuple[str, ...] | list[str] = (), *, root: str | Path | None = None,
        **options: Any) -> ContainerHandle:
    """Starts a container of `image` as `imagekit run -d` does and returns its handle (`wait()`,
    `logs()`, `stop()`, `kill()`, `remove()`, `reload()`); the image is pulled when the store lacks it.

    Other keywords are RunOptions fields (`name`, `env`, `volumes` as VolumeSpecs, `workdir`, `user`,
    `entrypoint`, `hostname`, `network` (bridge, the default as root, as docker; host, the default without root; none), `publish` (PortSpecs from
    imagekit.runtime.ports.parse_publish), `publish_all`, `memory` in bytes, `cpus`, `pids_limit`, `read_only`, `init`,
    `cap_add`, `cap_drop`, `privileged`, `auto_remove`, `tty`: a pty of the container's own, its output in
    `logs()` with the terminal's \r\n). Raises ImagekitErrors with one-line messages.
    """
    from imagekit.errors import ImageNotFound
    from imagekit.runtime.container import Runtime
    from imagekit.runtime.handle import ContainerHandle
    from imagekit.runtime.options import RunOptions
    from imagekit.store import Store

    store = Store(_root(root))
    runtime = Runtime(store)
    run_options = RunOptions(image=image, command=tuple(command), **options)
    runtime.check(run_options)  # what cannot work here (rootless limits, bridge) fails before a pull
    try:
        stored = store.find(image)
    except ImageNotFound:
        from imagekit.fetch import RegistryOptions, pull_to_store
        from imagekit.reference import parse_reference

        pull_to_store(parse_reference(image), store, RegistryOptions())
        stored = store.find(image)
    container = runtime.create(run_options, stored.image, image)
    try:
        runtime.start_detached(container)
    except BaseException:
        runtime.remove(runtime.containers.load(container.id, refresh=False), force=True, volumes=True)
        raise
    return ContainerHandle(runtime, container)


def _root(root: str | Path | None) -> Path:
    """The store root: the given one, else the CLI's default."""
    if root is None:
        from imagekit.cli import default_root

        return default_root()
    return Path(root)
