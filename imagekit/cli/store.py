"""Store commands: images, tag, rmi, inspect, prune, import — docker's words, docker's output.

`rmi` untags and then collects garbage, as `docker rmi` deletes what is no longer tagged; with
`--no-prune` it only untags and `imagekit prune` reclaims the space later.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from imagekit.cli import cli
from imagekit.errors import BadReference, LayerError
from imagekit.importer import import_tarball
from imagekit.layout import GarbageReport
from imagekit.oci import REF_NAME
from imagekit.platforms import host
from imagekit.reference import Reference, parse_reference
from imagekit.store import Store, StoredImage


def _store(ctx: click.Context) -> Store:
    return Store(ctx.obj.root)


# --- docker's human formats (go-units HumanDuration, HumanSizeWithPrecision(size, 3)) ---------------------
def human_size(size: float) -> str:
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    unit = 0
    while size >= 1000 and unit < len(units) - 1:
        size /= 1000
        unit += 1
    return f"{size:.3g}{units[unit]}"


def parse_time(created: str) -> dt.datetime | None:
    """An RFC 3339 time from an image config (UTC if it names no zone), or None if it is not one."""
    try:
        when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def human_since(created: str, now: dt.datetime | None = None) -> str:
    """`2 hours ago`, like docker's CREATED column; `N/A` for a missing or unparsable time."""
    when = parse_time(created)
    if when is None:
        return "N/A"
    seconds = ((now or dt.datetime.now(dt.timezone.utc)) - when).total_seconds()
    hours = int(seconds / 3600 + 0.5)
    if seconds < 1:
        text = "Less than a second"
    elif seconds < 2:
        text = "1 second"
    elif seconds < 60:
        text = f"{int(seconds)} seconds"
    elif seconds < 120:
        text = "About a minute"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} minutes"
    elif hours == 1:
        text = "About an hour"
    elif hours < 48:
        text = f"{hours} hours"
    elif hours < 24 * 7 * 2:
        text = f"{hours // 24} days"
    elif hours < 24 * 30 * 2:
        text = f"{hours // 24 // 7} weeks"
    elif hours < 24 * 365 * 2:
        text = f"{hours // 24 // 30} months"
    else:
        text = f"{int(seconds // 3600) // 24 // 365} years"
    return f"{text} ago"


def _table(rows: list[list[str]]) -> str:
    """Columns as docker's tabwriter lays them out (min width 10, padding 3)."""
    widths = [max(10, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "\n".join("".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + row[-1] for row in rows)


def _repository_and_tag(name: str | None) -> tuple[str, str, str]:
    """(repository, tag, digest) of a ref name as docker shows them; names that are not references
    (written by other tools) show as they are."""
    if not name:
        return "<none>", "<none>", ""
    try:
        ref = parse_reference(name, default_tag=False)
    except BadReference:
        return name, "<none>", ""
    return ref.familiar_name, ref.tag or "<none>", ref.digest or ""


# --- commands ----------------------------------------------------------------------------------------------
@cli.command()
@click.argument("repository", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs (each once).")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("--no-trunc", is_flag=True, help="Show full image IDs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="json: one object per line, as docker's --format json.")
@click.pass_context
def images(ctx: click.Context, repository: str | None, quiet: bool, digests: bool, no_trunc: bool, fmt: str) -> None:
    """List images (REPOSITORY TAG IMAGE ID CREATED SIZE), newest first, optionally only REPOSITORY[:TAG]."""
    wanted = parse_reference(repository, default_tag=False) if repository else None
    rows: list[dict[str, str]] = []
    for stored in sorted(_store(ctx).images(), key=_created_at, reverse=True):
        name = stored.entry.annotations.get(REF_NAME)
        if wanted is not None and not _matches(name, wanted):
            continue
        repo, tag, _ = _repository_and_tag(name)
        image_id = str(stored.id) if no_trunc else stored.id.short
        rows.append(
            {
                "Repository": repo,
                "Tag": tag,
                "Digest": str(stored.entry.digest),
                "ID": image_id,
                "CreatedAt": stored.created,
                "CreatedSince": human_since(stored.created),
                "Size": human_size(stored.size),
            }
        )
    if quiet:
        for image_id in dict.fromkeys(row["ID"] for row in rows):
            click.echo(image_id)
    elif fmt == "json":
        for row in rows:
            click.echo(json.dumps(row))
    else:
        columns = ["Repository", "Tag", *(["Digest"] if digests else []), "ID", "CreatedSince", "Size"]
        header = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
        click.echo(_table([header, *([row[c] for c in columns] for row in rows)]))


def _created_at(stored: StoredImage) -> dt.datetime:
    return parse_time(stored.created) or dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _matches(name: str | None, wanted: Reference) -> bool:
    if not name:
        return False
    try:
        ref = parse_reference(name, default_tag=False)
    except BadReference:
        return False
    return ref.name == wanted.name and (wanted.tag is None or ref.tag == wanted.tag)


@cli.command()
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag(ctx: click.Context, source: str, target: str) -> None:
    """Give the image SOURCE (reference or ID) the additional name TARGET."""
    _store(ctx).tag(source, target)


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@click.option("--no-prune", is_flag=True, help="Only remove the names; leave unreferenced blobs for `imagekit prune`.")
@click.option("-f", "--force", is_flag=True, help="By image ID, remove its names even in several repositories.")
@click.pass_context
def rmi(ctx: click.Context, refs: tuple[str, ...], no_prune: bool, force: bool) -> None:
    """Remove image names (an ID removes all its names), then delete blobs nothing references."""
    store = _store(ctx)
    for text in refs:
        _, names = store.untag(text, force=force)
        for name in names:
            click.echo(f"Untagged: {_familiar(name)}")
    if not no_prune:
        _report(store.prune(), total=False)


def _familiar(name: str) -> str:
    try:
        return parse_reference(name, default_tag=False).familiar
    except BadReference:
        return name


@cli.command()
@click.pass_context
def prune(ctx: click.Context) -> None:
    """Delete blobs no image name reaches, and leftovers of interrupted writes."""
    _report(_store(ctx).prune(), total=True)


def _report(report: GarbageReport, total: bool) -> None:
    for digest, _ in report.blobs:
        click.echo(f"Deleted: {digest}")
    if total:
        click.echo(f"Total reclaimed space: {human_size(report.bytes_freed)}")


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Show images as JSON (docker inspect's fields, plus the manifest)."""
    store = _store(ctx)
    click.echo(json.dumps([_inspect(store.find(text)) for text in refs], indent=4))


def _inspect(stored: StoredImage) -> dict[str, Any]:
    config = stored.image.config
    rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else {}
    refs = stored.references()
    return {
        "Id": str(stored.id),
        "RepoTags": [f"{r.familiar_name}:{r.tag}" for r in refs if r.tag],
        "RepoDigests": sorted({f"{r.familiar_name}@{stored.entry.digest}" for r in refs}),
        "Created": stored.created,
        "Author": config.get("author", ""),
        "Architecture": config.get("architecture", ""),
        "Variant": config.get("variant", ""),
        "Os": config.get("os", ""),
        "Config": config.get("config") or {},
        "RootFS": {"Type": rootfs.get("type", "layers"), "Layers": list(stored.image.diff_ids)},
        "Size": stored.size,
        "History": config.get("history", []),
        "Digest": str(stored.descriptor.digest),
        "MediaType": stored.descriptor.media_type,
        "Manifest": json.loads(stored.image.manifest_bytes),
    }


@cli.command("import")
@click.argument("tarball")
@click.argument("reference", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL.")
@click.option("-m", "--message", default="", help="Commit message for the image's history.")
@click.pass_context
def import_(ctx: click.Context, tarball: str, reference: str | None, changes: tuple[str, ...], message: str) -> None:
    """Make a one-layer image from a rootfs TARBALL (plain, gzip, zstd, xz, bzip2; `-` for stdin)."""
    ref = parse_reference(reference) if reference else None
    store = _store(ctx)
    with _open_tarball(tarball) as stream:
        image = import_tarball(store.layout, stream, ref, source=tarball, changes=changes, message=message, platform=host())
    click.echo(str(image.manifest.config.digest))


def _open_tarball(path: str) -> BinaryIO:
    if path == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return open(Path(path), "rb")
    except OSError as err:
        raise LayerError(f"cannot read {path}: {err.strerror}") from err
