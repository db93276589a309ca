"""`imagekit pull`, `push`, `tags` and `manifest inspect`: where the registry meets the store.

Progress goes to stderr; stdout carries what scripts read (the digest, the tag list, the manifest JSON).
A pull of a docker.io image tries the registry mirrors first (imagekit.registry.mirrors); push, tags
and manifest inspect always talk to the registry the reference names.
"""

from __future__ import annotations

import json
import sys

import click

from imagekit.cli import Context, cli
from imagekit.cli.auth import transport_for
from imagekit.cli.config import config_path, registry_mirrors
from imagekit.errors import ImagekitError
from imagekit.layout import Layout
from imagekit.origins import BlobOrigins
from imagekit.progress import reporter
from imagekit.reference import Reference, parse_reference
from imagekit.registry.client import Repository
from imagekit.registry.mirrors import Source, first_serving, parse_mirrors, uses_mirrors
from imagekit.registry.platforms import parse_platform
from imagekit.registry.transfer import Pulled, download, pull, push
from imagekit.store import Store


def repository(ref: Reference) -> Repository:
    """The repository a reference names, reached with the CLI's trust options and stored credentials."""
    return Repository(transport_for(ref), ref.path)


def pull_sources(ctx: Context, ref: Reference) -> list[Source]:
    """Where a pull of `ref` may come from, in order: for docker.io the mirrors (--registry-mirror or
    IMAGEKIT_REGISTRY_MIRRORS, else the settings file), then always the registry itself."""
    own = Source(repository(ref))
    if not uses_mirrors(ref):
        return [own]
    mirrors = parse_mirrors(ctx.registry_mirrors or registry_mirrors(config_path()))
    return [Source(Repository(transport_for(mirror), ref.path), mirror) for mirror in mirrors] + [own]


def _manifest_reference(ref: Reference) -> str:
    """What to ask the registry for: the digest when there is one (it pins the content), else the tag."""
    return ref.digest or ref.tag or "latest"


@cli.command("pull")
@click.option("--platform", "platform_text", metavar="OS/ARCH[/VARIANT]", help="Platform to choose from an index (default: this host's).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the digest.")
@click.argument("reference")
@click.pass_obj
def pull_command(ctx: Context, platform_text: str | None, quiet: bool, reference: str) -> None:
    """Download an image from a registry into the store."""
    ref = parse_reference(reference)
    wanted = parse_platform(platform_text) if platform_text else None
    layout = Layout(ctx.root)
    asked = _manifest_reference(ref)

    def attempt(source: Source) -> Pulled:
        """Manifest, config and layers all from `source`; the store verifies every blob before keeping it."""
        pulled = pull(source.repo, asked, wanted)
        if not quiet:
            click.echo(f"{asked}: Pulling from {ref.path}" + (f" via {source}" if source.mirror else ""), err=True)
        progress = reporter(sys.stderr, quiet=quiet)
        try:
            with layout.writing():
                download(pulled.image, layout, progress=progress)
                layout.write_image(pulled.image, str(ref))
        finally:
            progress.close()
        return pulled

    def fell_back(failed: Source, err: ImagekitError, following: Source) -> None:
        if not quiet:
            click.echo(f"{failed} failed: {err}; trying {following}", err=True)

    pulled = first_serving(pull_sources(ctx, ref), attempt, fell_back)
    BlobOrigins(ctx.root).record((d.digest for d in pulled.image.blobs()), ref.name)
    if quiet:
        click.echo(str(pulled.digest))
    else:
        click.echo(f"Digest: {pulled.digest}", err=True)
        click.echo(str(ref))


@cli.command("push")
@click.option("-q", "--quiet", is_flag=True, help="Print only the digest.")
@click.argument("source")
@click.argument("destination", required=False)
@click.pass_obj
def push_command(ctx: Context, quiet: bool, source: str, destination: str | None) -> None:
    """Upload an image from the store to a registry; prints the pushed manifest digest.

    Without DEST, the image goes to SOURCE's own name (SOURCE must then be a reference, not an ID).
    DEST names a tag, or `name@digest` to push by digest only (the digest must be the image's).
    """
    dest = parse_reference(destination or source)
    image = Store(ctx.root).find(source).image
    if dest.digest and dest.digest != str(image.digest):
        raise ImagekitError(f"cannot push {source} as {dest}: the image's digest is {image.digest}")
    origins = BlobOrigins(ctx.root)
    digests = [d.digest for d in image.blobs()]
    progress = reporter(sys.stderr, quiet=quiet)
    digest = push(
        image,
        repository(dest),
        dest.tag,
        origins=origins.on_registry(digests, dest.domain),
        progress=progress,
    )
    progress.close()
    origins.record(digests, dest.name)
    if not quiet:
        click.echo(f"{dest.tag or dest.path}: digest: {digest} size: {len(image.manifest_bytes)}", err=True)
    click.echo(str(digest))


@cli.command("tags")
@click.argument("repo")
def tags_command(repo: str) -> None:
    """List the tags of a repository, one per line."""
    ref = parse_reference(repo, default_tag=False)
    if ref.tag or ref.digest:
        raise click.UsageError("tags takes a repository name without a tag or digest")
    for tag in repository(ref).tags():
        click.echo(tag)


@cli.group("manifest")
def manifest_group() -> None:
    """Inspect manifests in a registry."""


@manifest_group.command("inspect")
@click.argument("reference")
def manifest_inspect(reference: str) -> None:
    """Print a remote manifest or index as JSON (verified against its digest)."""
    ref = parse_reference(reference)
    fetched = repository(ref).get_manifest(_manifest_reference(ref))
    click.echo(json.dumps(json.loads(fetched.data), indent=2))
