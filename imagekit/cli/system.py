"""Resource commands: `stats` (running containers' use, from their cgroups) and `system df` (disk use) —
docker's words and columns."""

from __future__ import annotations

import sys
import time

import click

from imagekit.cli import cli
from imagekit.runtime import diskusage
from imagekit.runtime import stats as runtime_stats
from imagekit.runtime.container import Runtime
from imagekit.runtime.state import Container
from imagekit.store import Store

#: seconds between the two samples `stats --no-stream` needs for CPU %, as docker's first reading
_NO_STREAM_INTERVAL = 0.5


@cli.command("stats")
@click.option("--no-stream", is_flag=True, help="Print one table (two samples 0.5 s apart) and exit.")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats(ctx: click.Context, no_stream: bool, containers: tuple[str, ...]) -> None:
    """Show running containers' CPU %, memory, network and block I/O and PIDs; refresh every second
    until Ctrl-C unless --no-stream. Without CONTAINER: every running container."""
    runtime = Runtime(Store(ctx.obj.root))
    chosen = [runtime.containers.find(text) for text in containers]
    try:
        before = _samples(runtime, chosen, bool(containers))
        while True:
            time.sleep(_NO_STREAM_INTERVAL if no_stream else 1.0)
            after = _samples(runtime, chosen, bool(containers))
            rows = [runtime_stats.row(c, before[c.id][1], sample) for c, sample in after.values() if c.id in before]
            if not no_stream and sys.stdout.isatty():
                click.echo("\033[2J\033[H", nl=False)
            click.echo(runtime_stats.table([runtime_stats.HEADER, *rows]))
            if no_stream:
                return
            before = after
    except KeyboardInterrupt:
        return


def _samples(runtime: Runtime, chosen: list[Container], named: bool) -> dict[str, tuple[Container, runtime_stats.Sample]]:
    """A sample of each running container: those named (refreshed), or every running one."""
    containers = [runtime.containers.load(c.id) for c in chosen] if named else runtime.containers.all()
    return {c.id: (c, runtime_stats.sample(c, runtime.cgroup_root)) for c in containers if c.state == "running"}


@cli.group("system")
def system() -> None:
    """The store as a whole (df)."""


@system.command("df")
@click.option("-v", "--verbose", is_flag=True, help="List each image, container, volume and build cache entry.")
@click.pass_context
def system_df(ctx: click.Context, verbose: bool) -> None:
    """Show disk use: Images (their blobs, each once; active: a container was made from it), Containers
    (their upper directories; active: running), Local Volumes (ROOT/volumes; active: mounted by a container)
    and Build Cache (everything under ROOT/cache). RECLAIMABLE is what the inactive ones take."""
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

