"""Resource commands: `stats` (containers' use, from their cgroups) and `system df` (disk use) —
docker's words and columns."""

from __future__ import annotations

import sys
import time
from contextlib import suppress

import click

from imagekit.cli.group import cli
from imagekit.errors import ContainerNotFound
from imagekit import diskusage
from imagekit.runtime import stats as runtime_stats
from imagekit.runtime.container import Runtime
from imagekit.runtime.state import Container
from imagekit.store import Store

#: container ID -> the container and its sample (None: not running)
_Samples = dict[str, tuple[Container, runtime_stats.Sample | None]]
#: seconds between the two samples `stats --no-stream` needs for CPU %, as docker's first reading
_NO_STREAM_INTERVAL = 0.5


@cli.command("stats")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too (their figures are zero).")
@click.option("--no-stream", is_flag=True, help="Print one table (two samples 0.5 s apart) and exit.")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats(ctx: click.Context, show_all: bool, no_stream: bool, containers: tuple[str, ...]) -> None:
    """Show containers' CPU %, memory, network and block I/O and PIDs; refresh every second until Ctrl-C
    unless --no-stream. Without CONTAINER: every running container (every one with -a). As docker, a
    container that is not running shows zeros, and one that stops meanwhile stays listed with zeros when
    named or with -a, and leaves the table otherwise."""
    runtime = Runtime(Store(ctx.obj.root))
    chosen = [runtime.containers.find(text).id for text in containers]  # an unknown name fails before any output
    try:
        before = _samples(runtime, chosen, show_all)
        while True:
            time.sleep(_NO_STREAM_INTERVAL if no_stream else 1.0)
            after = _samples(runtime, chosen, show_all)
            rows = _rows(before, after)
            if not no_stream and sys.stdout.isatty():
                click.echo("\033[2J\033[H", nl=False)
            click.echo(runtime_stats.table([runtime_stats.HEADER, *rows]))
            if no_stream:
                return
            before = after
    except KeyboardInterrupt:
        return


def _rows(before: _Samples, after: _Samples) -> list[tuple[str, ...]]:
    """The table's rows: zeros for a container not running, docker's figures for one sampled twice (one
    that started between the samples waits for the next refresh)."""
    rows = []
    for container, sample in after.values():
        earlier = before.get(container.id, (container, None))[1]
        if sample is None:
            rows.append(runtime_stats.idle_row(container))
        elif earlier is not None:
            rows.append(runtime_stats.row(container, earlier, sample))
    return rows


def _samples(runtime: Runtime, chosen: list[str], show_all: bool) -> _Samples:
    """A sample of each container shown (None for one that is not running): those whose IDs are `chosen`
    (less any removed meanwhile), else every running one, or every one with `show_all`."""
    if chosen:
        containers = []
        for container_id in chosen:
            with suppress(ContainerNotFound):  # removed while stats runs: it leaves the table
                containers.append(runtime.containers.load(container_id))
    else:
        containers = [c for c in runtime.containers.all() if show_all or c.state == "running"]
    return {c.id: (c, runtime_stats.sample(c, runtime.cgroup_root) if c.state == "running" else None) for c in containers}


@cli.group("system")
def system() -> None:
    """The store as a whole (df)."""


@system.command("df")
@click.option("-v", "--verbose", is_flag=True, help="List each image, container, volume and build cache entry.")
@click.pass_context
def system_df(ctx: click.Context, verbose: bool) -> None:
    """Show disk use (allocated bytes, as du counts them; the rows add up to the whole store): Images
    (blobs, each once, extracted layers and the layout's files; active: a container was made from it),
    Containers (records and writable layers; active: running), Local Volumes (active: mounted by a
    container) and Build Cache (step records, RUN cache mounts, layers no image lists, build snapshots).
    RECLAIMABLE is what `image prune -a`, `container prune`, `volume prune -a` and `builder prune` free."""
    kinds = diskusage.usage(Runtime(Store(ctx.obj.root)))
    rows = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
    for kind in kinds:
        percent = f" ({kind.reclaimable * 100 // kind.size}%)" if kind.size else ""
        rows.append((kind.type, str(len(kind.items)), str(kind.active), runtime_stats.human_size(kind.size),
                     runtime_stats.human_size(kind.reclaimable) + percent))
    click.echo(runtime_stats.table(rows))
    if verbose:
        for kind in kinds:
            click.echo(f"\n{kind.type} space usage:\n")
            click.echo(runtime_stats.table([("NAME", "SIZE", "ACTIVE")] + [(i.name, runtime_stats.human_size(i.size), "yes" if i.active else "no")
                                                                          for i in kind.items]))
