"""Pulling an image into the store as a library call: what `imagekit pull` does, and what the builder
does for a FROM image the store lacks.

A pull of a docker.io image tries the registry mirrors first (imagekit.registry.mirrors), then Docker
Hub; any other registry is asked directly. From the first source that serves, the manifest, config and
layers all come from that one source; the layout verifies every blob before keeping it, then the
reference names the image, and the blobs' origin repository is recorded (so a later push can mount
them instead of uploading). Output is the caller's: `progress` and `on_fallback` are told what happens.

Imports: imagekit.errors, digest, oci, image, reference, layout, store, origins, platforms, progress and
registry (fetch is where the registry meets the store; registry itself never imports the store).
"""

from __future__ import annotations

from collections.abc import Callable

from imagekit.errors import ImagekitError
from imagekit.oci import Platform
from imagekit.origins import BlobOrigins
from imagekit.progress import Progress
from imagekit.reference import Reference
from imagekit.registry.client import Repository
from imagekit.registry.mirrors import Source, first_serving, uses_mirrors
from imagekit.registry.options import RegistryOptions, repository, transport_for
from imagekit.registry.transfer import Pulled, download, pull
from imagekit.store import Store

#: Called when a source fails and the pull moves on: (failed source, its error, the source tried next).
OnFallback = Callable[[Source, ImagekitError, Source], None]
#: Called once per source whose manifest resolved, before its blobs download; returns the Progress for
#: that attempt, which pull_to_store closes when the attempt ends (docker prints "Pulling from" here).
ProgressFor = Callable[[Source], Progress]


def pull_sources(ref: Reference, options: RegistryOptions) -> list[Source]:
    """Where a pull of `ref` may come from, in order: for docker.io the mirrors of `options`, then
    always the registry the reference names."""
    own = Source(repository(ref, options))
    if not uses_mirrors(ref):
        return [own]
    return [Source(Repository(transport_for(mirror, options), ref.path), mirror) for mirror in options.mirrors()] + [own]


def manifest_reference(ref: Reference) -> str:
    """What to ask the registry for: the digest when there is one (it pins the content), else the tag."""
    return ref.digest or ref.tag or "latest"


def pull_to_store(
    ref: Reference,
    store: Store,
    options: RegistryOptions,
    *,
    platform: Platform | None = None,
    progress: ProgressFor | None = None,
    on_fallback: OnFallback | None = None,
) -> Pulled:
    """Pulls `ref` (for `platform`, default this host's) into `store` and names it `str(ref)`.

    Returns the Pulled whose image reads from the store (every blob verified and present) and whose
    digest is the one the reference resolved to (an index's, for a multi-platform tag). Raises the
    last source's ImagekitError when no source serves; a failed source leaves only verified,
    content-addressed blobs behind, which the next attempt reuses.
    """
    asked = manifest_reference(ref)
    layout = store.layout

    def attempt(source: Source) -> Pulled:
        pulled = pull(source.repo, asked, platform)
        reporter = progress(source) if progress is not None else Progress()
        try:
            with layout.writing():
                download(pulled.image, layout, progress=reporter)
                descriptor = layout.write_image(pulled.image, str(ref))
        finally:
            reporter.close()
        return Pulled(layout.image_at(descriptor), pulled.digest, pulled.index)

    pulled = first_serving(pull_sources(ref, options), attempt, on_fallback or (lambda *_: None))
    BlobOrigins(store.root).record((d.digest for d in pulled.image.blobs()), ref.name)
    return pulled
