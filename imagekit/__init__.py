"""imagekit: a daemonless OCI image toolkit (build, move and run container images without a daemon).

`imagekit.build(...)` is the Python entry point of `imagekit build`; it imports the builder only when
called, so `import imagekit` stays cheap for the commands that do not build.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagekit.builder.build import BuiltImage

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

    if root is None:
        from imagekit.cli import default_root

        root = default_root()
    store = Store(Path(root))
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
