"""Layer commands: `unpack` (an image's root filesystem into a directory, as `umoci raw unpack`)."""

from __future__ import annotations

from pathlib import Path

import click

from imagekit.cli.group import cli
from imagekit.layers.apply import MAX_BYTES_ENV, Limits, parse_size
from imagekit.layers.unpack import unpack as unpack_image
from imagekit.store import Store


@cli.command()
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--max-size",
    metavar="SIZE",
    help=f"Refuse an image that unpacks to more than SIZE (as 10G, 512M; default ${MAX_BYTES_ENV} or 64G).",
)
@click.pass_context
def unpack(ctx: click.Context, ref: str, dest: Path, max_size: str | None) -> None:
    """Extract the root filesystem of image REF (all layers, in order) into the new directory DEST.

    DEST must not exist or be empty; it appears complete or not at all. Paths never leave DEST.
    As non-root, devices are skipped and owners kept in the user.rootlesscontainers xattr.
    """
    image = Store(ctx.obj.root).find(ref).image
    limits = Limits.from_env()
    if max_size is not None:
        limits = Limits(max_bytes=parse_size(max_size, "--max-size"), max_inodes=limits.max_inodes)
    unpack_image(image, dest, limits=limits)
