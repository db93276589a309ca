"""`imagekit pull`, `push`, `tags` and `manifest inspect`: where the registry meets the store.

Progress goes to stderr; stdout carries what scripts read (the digest, the tag list, the manifest JSON).
Pull is imagekit.fetch.pull_to_store with docker's output (a docker.io image tries the registry mirrors
first); push, tags and manifest inspect always talk to the registry the reference names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from imagekit.cli import Context
from imagekit.cli.group import cli
from imagekit.cli.auth import registry_options
from imagekit.digest import Digest
from imagekit.errors import ImageNotFound, ImagekitError
from imagekit.fetch import manifest_reference, pull_to_store
from imagekit.origins import BlobOrigins
from imagekit.oci import Platform
from imagekit.platforms import parse_platform
from imagekit.progress import Progress, reporter
from imagekit.reference import Reference, parse_reference
from imagekit.registry.mirrors import Source
from imagekit.registry.options import RegistryOptions, repository
from imagekit.registry.transfer import push
from imagekit.store import Store


@cli.command("pull")
@click.option("--platform", "platform_text", metavar="OS/ARCH[/VARIANT]", help="Platform to choose from an index (default: this host's).")
@click.option("-a", "--all-tags", is_flag=True, help="Pull every tag of the repository (REFERENCE names no tag).")
@click.option("-q", "--quiet", is_flag=True, help="No progress; print only the reference, as docker does.")
@click.option("--digestfile", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Write the pulled digest to FILE.")
@click.argument("reference", metavar="REF")
@click.pass_obj
def pull_command(ctx: Context, platform_text: str | None, all_tags: bool, quiet: bool, digestfile: Path | None, reference: str) -> None:
    """Download an image from a registry into the store; prints the reference on stdout.

    Progress goes to stderr and ends, as docker's, with `Status: Downloaded newer image for REF` or
    `Status: Image is up to date for REF`.
    """
    wanted = parse_platform(platform_text) if platform_text else None
    options = registry_options(ctx)
    store = Store(ctx.root)
    if all_tags:
        shown = parse_reference(reference, default_tag=False)
        if shown.tag or shown.digest:
            raise click.UsageError("a tag or digest cannot be used with --all-tags/-a")
        refs = [shown.with_tag(tag) for tag in repository(shown, options).tags()]
    else:
        shown = parse_reference(reference)
        refs = [shown]
    news, digests = [], []
    for ref in refs:
        new, digest = _pull_one(ref, store, options, wanted, quiet)
        news.append(new)
        digests.append(str(digest))
    if not quiet:
        status = "Downloaded newer image for" if any(news) else "Image is up to date for"
        click.echo(f"Status: {status} {shown.familiar}", err=True)
    if digestfile is not None:
        _write_text(digestfile, "".join(f"{d}\n" for d in digests) if all_tags else digests[0])
    click.echo(str(shown))


def _pull_one(ref: Reference, store: Store, options: RegistryOptions, platform: Platform | None, quiet: bool) -> tuple[bool, Digest]:
    """Pulls one reference with docker's lines on stderr; returns whether its name now means other
    content than before, and the digest it resolved to."""
    try:
        before: Digest | None = store.layout.resolve(str(ref)).digest
    except ImageNotFound:
        before = None

    def pulling(source: Source) -> Progress:
        if not quiet:
            click.echo(f"{manifest_reference(ref)}: Pulling from {ref.path}" + (f" via {source}" if source.mirror else ""), err=True)
        return reporter(sys.stderr, quiet=quiet)

    def fell_back(failed: Source, err: ImagekitError, following: Source) -> None:
        if not quiet:
            click.echo(f"{failed} failed: {err}; trying {following}", err=True)

    pulled = pull_to_store(ref, store, options, platform=platform, progress=pulling, on_fallback=fell_back)
    if not quiet:
        click.echo(f"Digest: {pulled.digest}", err=True)
    return store.layout.resolve(str(ref)).digest != before, pulled.digest


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as err:
        raise ImagekitError(f"cannot write {path}: {err.strerror}") from err


@cli.command("push")
@click.option("-q", "--quiet", is_flag=True, help="Print only the digest.")
@click.argument("source")
@click.argument("destination", required=False, metavar="[DEST]")
@click.pass_obj
def push_command(ctx: Context, quiet: bool, source: str, destination: str | None) -> None:
    """Upload an image from the store to a registry; prints the pushed manifest digest.

    Without DEST, the image goes to SOURCE's own name (SOURCE must then be a reference, not an ID).
    DEST names a tag, or `name@digest` to push by digest only (the digest must be the image's).
    """
    dest = parse_reference(destination or source)
    stored = Store(ctx.root).find(source)
    if destination is None and str(dest) not in {str(r) for r in stored.references()}:
        raise ImagekitError(f"{source!r} is not a name of the image it found: give DEST to push an image found by ID")
    image = stored.image
    if dest.digest and dest.digest != str(image.digest):
        raise ImagekitError(f"cannot push {source} as {dest}: the image's digest is {image.digest}")
    if not quiet:
        click.echo(f"The push refers to repository [{dest.name}]", err=True)
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
@click.argument("repo", metavar="REPOSITORY")
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
@click.argument("reference", metavar="REF")
@click.pass_obj
def manifest_inspect(ctx: Context, reference: str) -> None:
    """Print a remote manifest or index as JSON (verified against its digest)."""
    ref = parse_reference(reference)
    fetched = repository(ref, registry_options(ctx)).get_manifest(manifest_reference(ref))
    click.echo(json.dumps(json.loads(fetched.data), indent=2))
