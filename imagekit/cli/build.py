"""`imagekit build` and `imagekit builder prune`: the CLI over imagekit.builder.

Steps and their output go to stderr; stdout gets the image ID alone, so `id=$(imagekit build .)`
works with or without `-q`. Base images missing from the store are pulled as `imagekit pull` pulls
them (mirrors, credentials, trust options); that is the one place the builder meets a registry.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from imagekit.builder.build import Builder, Pull
from imagekit.builder.options import FORMATS, BuildOptions, Secret
from imagekit.cli import Context
from imagekit.cli.group import cli
from imagekit.errors import ImagekitError
from imagekit.image import Image
from imagekit.progress import human_size
from imagekit.oci import Platform
from imagekit.reference import Reference, parse_reference
from imagekit.store import Store


def _pairs(values: tuple[str, ...], what: str, *, value_required: bool) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key or (value_required and not eq):
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=what)
        if not eq:
            env = os.environ.get(key)
            if env is None:
                continue  # docker: `--build-arg NAME` takes NAME from the environment, or leaves it unset
            value = env
        pairs[key] = value
    return pairs


def _secret(text: str) -> Secret:
    fields = dict(part.partition("=")[::2] for part in text.split(","))
    secret_id, source = fields.get("id", ""), fields.get("src") or fields.get("source") or ""
    if not secret_id or not source:
        raise click.BadParameter(f"{text!r}: expected id=ID,src=PATH", param_hint="--secret")
    path = Path(source)
    if not path.is_file():
        raise click.BadParameter(f"{text!r}: {source} is not a file", param_hint="--secret")
    return Secret(secret_id, path)


@cli.command("build")
@click.option("-t", "--tag", "tags", multiple=True, metavar="REF", help="Name the image (repeatable).")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The Builderfile (default: Builderfile, Dockerfile, then Containerfile in CONTEXT).")
@click.option("--build-arg", "build_args", multiple=True, metavar="K[=V]", help="Set a build-time variable (repeatable).")
@click.option("--target", default="", metavar="STAGE", help="Build this stage (and what it needs) only.")
@click.option("--no-cache", is_flag=True, help="Run every step, ignoring the build cache.")
@click.option("--pull", is_flag=True, help="Always check the registry for newer base images.")
@click.option("--network", type=click.Choice(["host", "none"]), default="host", help="RUN's network (default host).")
@click.option("--isolation", type=click.Choice(["namespaces", "rootless", "chroot"]), default="namespaces",
              help="How RUN steps are isolated (default namespaces; rootless without root privileges).")
@click.option("--compression", type=click.Choice(["gzip", "zstd"]), default="gzip", help="Layer compression (default gzip).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Set an image label (repeatable).")
@click.option("--iidfile", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the image ID to this file.")
@click.option("--platform", default="", metavar="OS/ARCH[/VARIANT]", help="Target platform (default: this host's).")
@click.option("--format", "image_format", type=click.Choice(FORMATS), default="oci", help="Manifest format (default oci).")
@click.option("--secret", "secrets", multiple=True, metavar="id=ID,src=PATH", help="A secret file RUN --mount=type=secret can read.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.argument("context", metavar="CONTEXT|-", type=click.Path(allow_dash=True))
@click.pass_obj
def build_command(ctx: Context, tags: tuple[str, ...], file: Path | None, build_args: tuple[str, ...], target: str,
                  no_cache: bool, pull: bool, network: str, isolation: str, compression: str, labels: tuple[str, ...],
                  iidfile: Path | None, platform: str, image_format: str, secrets: tuple[str, ...], quiet: bool,
                  context: str) -> None:
    """Build an image from a Builderfile (Dockerfile syntax) and the CONTEXT directory (`-`: a Builderfile on stdin, no context)."""
    text = None
    directory: Path | None = None
    if context == "-":
        text = sys.stdin.buffer.read()
    else:
        directory = Path(context)
        if not directory.is_dir():
            raise ImagekitError(f"build context {context}: not a directory")
        if file is not None and not file.is_absolute() and not file.exists():
            file = directory / file
    options = BuildOptions(
        context=directory,
        builderfile=file,
        builderfile_text=text,
        tags=tags,
        build_args=_pairs(build_args, "--build-arg", value_required=False),
        target=target,
        no_cache=no_cache,
        pull=pull,
        network=network,  # type: ignore[arg-type]
        isolation=isolation,  # type: ignore[arg-type]
        compression=compression,
        labels=_pairs(labels, "--label", value_required=True),
        platform=platform,
        format=image_format,
        secrets=tuple(_secret(s) for s in secrets),
        quiet=quiet,
    )
    store = Store(ctx.root)
    built = Builder(store, options, _puller(ctx, store, quiet)).run()
    if not quiet:
        for tag in built.tags:
            click.echo(f"Successfully tagged {parse_reference(tag).familiar}", err=True)
    if iidfile is not None:
        iidfile.write_text(built.id)
    click.echo(built.id)


def _puller(ctx: Context, store: Store, quiet: bool) -> Pull:
    """FROM images the store lacks come as `imagekit pull` brings them (with a line saying so)."""

    def pull(ref: Reference, platform: Platform) -> Image:
        from imagekit.cli.auth import registry_options
        from imagekit.fetch import pull_to_store

        if not quiet:
            click.echo(f"Pulling {ref.familiar} ...", err=True)
        return pull_to_store(ref, store, registry_options(ctx), platform=platform).image

    return pull


@cli.group("builder")
def builder_group() -> None:
    """Manage the build cache."""


@builder_group.command("prune")
@click.pass_obj
def builder_prune(ctx: Context) -> None:
    """Remove build cache that no image uses: step records whose layer no image has, RUN cache mounts,
    the context's file digests, extracted layers no image lists and dead build snapshots, as `docker
    builder prune` frees BuildKit's."""
    from imagekit.builder.prune import prune

    removed, freed = prune(Store(ctx.root))
    click.echo(f"Deleted {removed} build cache records", err=True)
    click.echo(f"Total reclaimed space: {human_size(freed)}")
