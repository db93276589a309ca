"""`imagekit pull`, `push`, `tags` and `manifest inspect`: where the registry meets the store.

Progress goes to stderr; stdout carries what scripts read (the digest, the tag list, the manifest JSON).
Pull is imagekit.fetch.pull_to_store with docker's output (a docker.io image tries the registry mirrors
first); push, tags and manifest inspect always talk to the registry the reference names.
"""

from __future__ import annotations

import json
import sys

import click

from imagekit.cli import Context, cli
from imagekit.cli.auth import registry_options
from imagekit.errors import ImagekitError
from imagekit.fetch import manifest_reference, pull_to_store
from imagekit.origins import BlobOrigins
from imagekit.platforms import parse_platform
from imagekit.progress import Progress, reporter
from imagekit.reference import parse_reference
from imagekit.registry.mirrors import Source
from imagekit.registry.options import repository
from imagekit.registry.transfer import push
from imagekit.store import Store


@cli.command("pull")
@click.option("--platform", "platform_text", metavar="OS/ARCH[/VARIANT]", help="Platform to choose from an index (default: this host's).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the digest.")
@click.argument("reference")
@click.pass_obj
def pull_command(ctx: Context, platform_text: str | None, quiet: bool, reference: str) -> None:
    """Download an image from a registry into the store."""
    ref = parse_reference(reference)
    wanted = parse_platform(platform_text) if platform_text else None

    def pulling(source: Source) -> Progress:
        if not quiet:
            click.echo(f"{manifest_reference(ref)}: Pulling from {ref.path}" + (f" via {source}" if source.mirror else ""), err=True)
        return reporter(sys.stderr, quiet=quiet)

    def fell_back(failed: Source, err: ImagekitError, following: Source) -> None:
        if not quiet:
            click.echo(f"{failed} failed: {err}; trying {following}", err=True)

    pulled = pull_to_store(ref, Store(ctx.root), registry_options(ctx), platform=wanted, progress=pulling, on_fallback=fell_back)
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
        repository(dest, registry_options(ctx)),
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
@click.pass_obj
def tags_command(ctx: Context, repo: str) -> None:
    """List the tags of a repository, one per line."""
    ref = parse_reference(repo, default_tag=False)
    if ref.tag or ref.digest:
        raise click.UsageError("tags takes a repository name without a tag or digest")
    for tag in repository(ref, registry_options(ctx)).tags():
        click.echo(tag)


@cli.group("manifest")
def manifest_group() -> None:
    """Inspect manifests in a registry."""


@manifest_group.command("inspect")
@click.argument("reference")
@click.pass_obj
def manifest_inspect(ctx: Context, reference: str) -> None:
    """Print a remote manifest or index as JSON (verified against its digest)."""
    ref = parse_reference(reference)
    fetched = repository(ref, registry_options(ctx)).get_manifest(manifest_reference(ref))
    click.echo(json.dumps(json.loads(fetched.data), indent=2))
