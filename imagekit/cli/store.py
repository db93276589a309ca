"""Store commands: images, tag, rmi, image inspect, prune, import — docker's words, docker's output.

`rmi` untags and then collects garbage, as `docker rmi` deletes what is no longer tagged; with
`--no-prune` it only untags and `imagekit prune` reclaims the space later.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from imagekit.cli import report_error
from imagekit.cli.group import cli
from imagekit.errors import BadReference, ImagekitError, LayerError
from imagekit.importer import import_tarball
from imagekit.oci import REF_NAME
from imagekit.platforms import host
from imagekit.reference import Reference, parse_reference
from imagekit.snapshots import Snapshots
from imagekit.store import Store, StoredImage

if TYPE_CHECKING:
    from imagekit.cli.template import Template  # loaded only when a --format template is given


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
    """(repository, tag, digest) of a ref name as docker shows them (a short name another tool wrote,
    `x` or `x:1`, normalised as lookups normalise it); names that are not references show as they are."""
    if not name:
        return "<none>", "<none>", ""
    try:
        ref = parse_reference(name)
    except BadReference:
        return name, "<none>", ""
    return ref.familiar_name, ref.tag or "<none>", ref.digest or ""


# --- commands ----------------------------------------------------------------------------------------------
#: `--format` field -> the header docker's `table` format gives it.
_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
}
_FILTERS = ("dangling", "reference", "before", "since", "label")


@cli.command()
@click.argument("repository", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (the same as without: imagekit keeps no intermediate images).")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs (each once).")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("--no-trunc", is_flag=True, help="Show full image IDs.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE", help="dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE] (repeatable).")
@click.option("--format", "fmt", default="table", metavar="FORMAT", help="table, json (one object per line), a Go template, or `table TEMPLATE`.")
@click.pass_context
def images(ctx: click.Context, repository: str | None, all_: bool, quiet: bool, digests: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str) -> None:
    """List images (REPOSITORY TAG IMAGE ID CREATED SIZE), newest first, optionally only REPOSITORY[:TAG]."""
    store = _store(ctx)
    wanted = parse_reference(repository, default_tag=False) if repository else None
    keep = _image_filter(store, filters)
    template = format_template(fmt) if fmt not in ("table", "json") else None
    rows: list[dict[str, str]] = []
    for stored in sorted(store.images(), key=_created_at, reverse=True):
        name = stored.entry.annotations.get(REF_NAME)
        if (wanted is not None and not _matches(name, wanted)) or not keep(stored, name):
            continue
        repo, tag, _ = _repository_and_tag(name)
        image_id = str(stored.id) if no_trunc else stored.id.short
        rows.append(
            {
                "Repository": repo,
                "Tag": tag,
                "Digest": str(stored.entry.digest),
                "ID": image_id,
                "CreatedAt": _go_time(stored.created),
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
    elif template is not None:
        _print_template(template, rows)
    else:
        columns = ["Repository", "Tag", *(["Digest"] if digests else []), "ID", "CreatedSince", "Size"]
        click.echo(_table([[_HEADERS[c] for c in columns], *([row[c] for c in columns] for row in rows)]))


def format_template(fmt: str) -> tuple[Template, Template | None]:
    """The row template of `--format` and, for `table TEMPLATE`, the header it renders to."""
    from imagekit.cli.template import parse as parse_template

    table = fmt.startswith("table ")
    row = parse_template(fmt.removeprefix("table ").replace("\\t", "\t").replace("\\n", "\n"))
    return row, (row if table else None)


def _print_template(template: tuple[Template, Template | None], rows: list[dict[str, Any]]) -> None:
    """Rows through a `--format` template; a `table` template gets docker's header and aligned columns."""
    row_template, header = template
    lines = [row_template.render(row) for row in rows]
    if header is None:
        for line in lines:
            click.echo(line)
        return
    cells = [line.split("\t") for line in [header.render(_HEADERS), *lines]]
    width = max(len(c) for c in cells)
    click.echo(_table([c + [""] * (width - len(c)) for c in cells]).rstrip("\n"))


def _go_time(created: str) -> str:
    """An RFC 3339 time as docker's CreatedAt shows it (Go's time.String, in UTC)."""
    when = parse_time(created)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if when else ""


def _created_at(stored: StoredImage) -> dt.datetime:
    return parse_time(stored.created) or dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _matches(name: str | None, wanted: Reference) -> bool:
    if not name:
        return False
    try:
        ref = parse_reference(name)
    except BadReference:
        return False
    return ref.name == wanted.name and (wanted.tag is None or ref.tag == wanted.tag)


def _image_filter(store: Store, filters: tuple[str, ...]) -> Callable[[StoredImage, str | None], bool]:
    """docker's `images --filter`: values of one key are alternatives (or), different keys must all hold."""
    wanted: dict[str, list[str]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or key not in _FILTERS:
            raise click.UsageError(f"invalid filter {text!r}: use one of {', '.join(k + '=...' for k in _FILTERS)}")
        wanted.setdefault(key, []).append(value)
    dangling = set()
    for value in wanted.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise click.UsageError(f"invalid filter 'dangling={value}': use true or false")
        dangling.add(value.lower() in ("true", "1"))
    before = [_created_at(store.find(text)) for text in wanted.get("before", [])]
    since = [_created_at(store.find(text)) for text in wanted.get("since", [])]
    patterns = [_path_pattern(p) for p in wanted.get("reference", [])]

    def keep(stored: StoredImage, name: str | None) -> bool:
        labels = (stored.image.config.get("config") or {}).get("Labels") or {}
        return (
            (not dangling or (not stored.names) in dangling)
            and (not patterns or _reference_matches(name, patterns))
            and all(_created_at(stored) < when for when in before)
            and all(_created_at(stored) > when for when in since)
            and (not wanted.get("label") or any(_has_label(labels, text) for text in wanted["label"]))
        )

    return keep


def _has_label(labels: dict[str, str], text: str) -> bool:
    key, sep, value = text.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _path_pattern(pattern: str) -> re.Pattern[str]:
    """Go's path.Match as a regex: `*` and `?` stay within one path component, `[...]` is a class."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


def _reference_matches(name: str | None, patterns: list[re.Pattern[str]]) -> bool:
    """docker's reference.FamiliarMatch: the pattern against `name:tag`, then against `name` alone."""
    if not name:
        return False
    try:
        ref = parse_reference(name)
    except BadReference:
        return any(p.fullmatch(name) for p in patterns)
    return any(p.fullmatch(ref.familiar) or p.fullmatch(ref.familiar_name) for p in patterns)


@cli.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@click.pass_context
def tag(ctx: click.Context, source: str, target: str) -> None:
    """Give the image SOURCE (reference or ID) the additional name TARGET."""
    _store(ctx).tag(source, target)


@cli.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF|ID...")
@click.option("--no-prune", is_flag=True, help="Only remove the names; leave unreferenced blobs for `imagekit prune`.")
@click.option("-f", "--force", is_flag=True, help="By image ID, remove its names even in several repositories.")
@click.pass_context
def rmi(ctx: click.Context, refs: tuple[str, ...], no_prune: bool, force: bool) -> None:
    """Remove image names (an ID removes all its names, or a dangling image), then delete blobs nothing references.

    As docker, every name that can be removed is, each failure is reported, and the exit status is 1 if any failed."""
    store = _store(ctx)
    failed = removed = False
    for text in refs:
        try:
            _, names = store.untag(text, force=force)
        except ImagekitError as err:
            report_error(err)
            failed = True
            continue
        removed = True
        for name in names:
            click.echo(f"Untagged: {_familiar(name)}")
    if removed and not no_prune:
        _report(store, total=False)
    if failed:
        ctx.exit(1)


def _familiar(name: str) -> str:
    try:
        return parse_reference(name).familiar
    except BadReference:
        return name


@cli.command()
@click.option("-a", "--all", "all_images", is_flag=True, help="Delete every image no container was made from, not only dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation (asked only when stdin and stderr are a terminal).")
@click.pass_context
def prune(ctx: click.Context, all_images: bool, force: bool) -> None:
    """Delete dangling images (those without a name), or with -a every image no container was made from,
    then blobs no image reaches, extracted layers no image lists, and leftovers of interrupted writes."""
    if not force and sys.stdin.isatty() and sys.stderr.isatty():  # a person at a terminal, as docker asks
        which = "images without at least one container associated to them" if all_images else "dangling images"
        click.confirm(f"WARNING! This will remove all {which}.\nAre you sure you want to continue?", abort=True, err=True)
    store = _store(ctx)
    if all_images:
        from imagekit.runtime.state import Containers

        removed = store.prune_unused({c.image_id for c in Containers(store).all(refresh=False)})
    else:
        removed = store.prune_dangling()
    for image_id in removed:
        click.echo(f"Deleted image: {image_id}")
    _report(store, total=True)


def _report(store: Store, total: bool) -> None:
    """Collects the store's garbage (blobs, then extracted layers) and says what went."""
    report = store.prune()
    layer_bytes = Snapshots(store).gc(keep=store.diff_ids())
    for digest, _ in report.blobs:
        click.echo(f"Deleted: {digest}")
    if total:
        click.echo(f"Total reclaimed space: {human_size(report.bytes_freed + layer_bytes)}")


@click.command("inspect")
@click.argument("refs", nargs=-1, required=True, metavar="REF|ID...")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="A Go template per image, e.g. '{{.Id}}' or '{{json .Config}}'.")
@click.pass_context
def inspect(ctx: click.Context, refs: tuple[str, ...], fmt: str | None) -> None:
    """Show images as JSON (docker inspect's fields, plus the manifest); each missing one is an error (exit 1)."""
    from imagekit.cli.inspect import show

    store = _store(ctx)
    show(ctx, refs, fmt, lambda text: inspect_image(store.find(text)))


def inspect_image(stored: StoredImage) -> dict[str, Any]:
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
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID (no hint about naming an unnamed image).")
@click.argument("tarball", metavar="TARBALL|-")
@click.argument("reference", required=False, metavar="[REF]")
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION", help="Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL.")
@click.option("-m", "--message", default="", metavar="MSG", help="Commit message for the image's history.")
@click.pass_context
def import_(ctx: click.Context, quiet: bool, tarball: str, reference: str | None, changes: tuple[str, ...], message: str) -> None:
    """Make a one-layer image from a rootfs TARBALL (plain, gzip, zstd, xz, bzip2; `-` for stdin)."""
    ref = parse_reference(reference) if reference else None
    store = _store(ctx)
    with _open_tarball(tarball) as stream:
        image = import_tarball(store.layout, stream, ref, source=tarball, changes=changes, message=message, platform=host())
    click.echo(str(image.manifest.config.digest))
    if ref is None and not quiet:
        click.echo(f"imagekit: the image has no name (`imagekit tag {image.manifest.config.digest.short} NAME` gives it one)", err=True)


def _open_tarball(path: str) -> BinaryIO:
    if path == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return open(Path(path), "rb")
    except OSError as err:
        raise LayerError(f"cannot read {path}: {err.strerror}") from err


class _ImageGroup(click.Group):
    """docker's `image` group; its `pull` and `push` are the top-level commands, loaded only when asked for."""

    _ELSEWHERE = ("pull", "push")

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._ELSEWHERE))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._ELSEWHERE:
            return cli.get_command(ctx, cmd_name)
        return super().get_command(ctx, cmd_name)


@cli.group("image", cls=_ImageGroup)
def image_group() -> None:
    """Manage images: docker's `image` commands (ls, rm, prune, inspect, tag, import, pull, push) beside the short forms."""


for _name, _command in {"ls": images, "list": images, "rm": rmi, "remove": rmi, "prune": prune, "inspect": inspect, "tag": tag, "import": import_}.items():
    image_group.add_command(_command, _name)
