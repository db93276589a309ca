"""Container and volume commands: ps, port, start, stop, kill, rm, logs, container inspect, volume — docker's words.

Each reads the records under ROOT/containers (imagekit.runtime.state); there is no daemon to ask.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from imagekit.cli.group import cli
from imagekit.errors import ImagekitError
from imagekit.runtime.container import Runtime
from imagekit.runtime.ports import Binding, format_ports
from imagekit.runtime.state import Container
from imagekit.store import Store


def _runtime(ctx: click.Context) -> Runtime:
    return Runtime(Store(ctx.obj.root))


def _status(container: Container) -> str:
    if container.state == "running":
        return "Up"
    if container.state == "exited":
        return f"Exited ({container.exit_code})" + (" OOMKilled" if container.oom_killed else "")
    return "Created"


@cli.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only the IDs.")
@click.option("--no-trunc", is_flag=True, help="Full IDs and commands.")
@click.pass_context
def ps(ctx: click.Context, show_all: bool, quiet: bool, no_trunc: bool) -> None:
    """List containers (running ones unless -a)."""
    runtime = _runtime(ctx)
    every = runtime.containers.all()
    runtime.release_stale()
    containers = [c for c in every if show_all or c.state == "running"]
    if quiet:
        for container in containers:
            click.echo(container.id if no_trunc else container.short_id)
        return
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for c in containers:
        command = " ".join(c.argv)
        command = command if no_trunc or len(command) <= 20 else command[:19] + "…"
        rows.append([c.id if no_trunc else c.short_id, c.image, json.dumps(command, ensure_ascii=False), c.created[:19].replace("T", " "), _status(c), _ports(c), c.name])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _bindings(container: Container) -> list[Binding]:
    return [Binding(**item) for item in container.ports]


def _ports(container: Container) -> str:
    """docker ps's PORTS: `0.0.0.0:8080->80/tcp, ...`."""
    return ", ".join(f"{b.host_ip}:{b.host_port}->{b.private}" for b in sorted(_bindings(container), key=lambda b: (b.container_port, b.proto, b.host_ip)))


@cli.command("port")
@click.argument("container")
@click.argument("private", required=False, default="", metavar="[PRIVATE_PORT[/PROTO]]")
@click.pass_context
def port(ctx: click.Context, container: str, private: str) -> None:
    """List a running container's published ports, or the host addresses of one of them."""
    record = _runtime(ctx).containers.find(container)
    for line in format_ports(_bindings(record), private, record.name):
        click.echo(line)


@cli.command("start")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Start stopped containers again (in the background), as `docker start`."""
    runtime = _runtime(ctx)
    for text in containers:
        runtime.start_detached(runtime.containers.find(text))
        click.echo(text)


@cli.command("stop")
@click.option("-t", "--time", "timeout", type=float, default=10, show_default=True, help="Seconds before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop(ctx: click.Context, timeout: float, containers: tuple[str, ...]) -> None:
    """Stop containers: the image's STOPSIGNAL (default SIGTERM), then SIGKILL after the timeout."""
    runtime = _runtime(ctx)
    for text in containers:
        runtime.stop(runtime.containers.find(text), timeout)
        click.echo(text)


@cli.command("kill")
@click.option("-s", "--signal", "signal_name", default="KILL", show_default=True, help="Signal name or number.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill(ctx: click.Context, signal_name: str, containers: tuple[str, ...]) -> None:
    """Send a signal to containers' processes."""
    from imagekit.runtime.process import parse_signal

    runtime = _runtime(ctx)
    number = parse_signal(signal_name)
    for text in containers:
        runtime.kill(runtime.containers.find(text), number)
        click.echo(text)


@cli.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Remove its anonymous volumes too.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove containers: record, snapshot and cgroup."""
    runtime = _runtime(ctx)
    failed = False
    for text in containers:
        try:
            runtime.remove(runtime.containers.find(text), force=force, volumes=volumes)
            click.echo(text)
        except ImagekitError as err:
            click.echo(f"imagekit: {err}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@cli.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the container exits.")
@click.option("--tail", default="all", help="Only the last N lines.")
@click.argument("container")
@click.pass_context
def logs(ctx: click.Context, follow: bool, tail: str, container: str) -> None:
    """Print a detached container's output (stdout and stderr, as written)."""
    runtime = _runtime(ctx)
    record = runtime.containers.find(container)
    path = runtime.containers.log_path(record.id)
    out = sys.stdout.buffer
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        data = handle.read()
        if tail != "all":
            if not tail.isdigit():
                raise click.BadParameter(f"{tail!r} is not a number of lines", param_hint="--tail")
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[len(lines) - int(tail):]) if int(tail) else b""
        out.write(data)
        out.flush()
        while follow:
            chunk = handle.read()
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            if runtime.containers.load(record.id).state != "running":
                out.write(handle.read())
                break
            time.sleep(0.1)


@cli.group("container")
def container_group() -> None:
    """Containers (inspect, prune; the other commands are top-level, as docker's)."""


@container_group.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="A Go template per container, e.g. '{{.State.Status}}'.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def container_inspect(ctx: click.Context, fmt: str | None, containers: tuple[str, ...]) -> None:
    """Show containers as JSON (docker inspect's fields); each missing one is an error (exit 1)."""
    from imagekit.cli.inspect import show

    runtime = _runtime(ctx)
    show(ctx, containers, fmt, lambda text: inspect_container(runtime, runtime.containers.find(text)))


@container_group.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask (imagekit never asks; accepted for docker's scripts).")
@click.pass_context
def container_prune(ctx: click.Context, force: bool) -> None:
    """Remove every stopped container (record and writable layer; its volumes stay), as `docker container prune`."""
    from imagekit.fsutil import disk_usage
    from imagekit.runtime.stats import human_size

    runtime = _runtime(ctx)
    removed, freed = [], 0
    for container in runtime.containers.all():
        if container.state == "running":
            continue
        size = disk_usage(runtime.disk_paths(container))
        try:
            runtime.remove(runtime.containers.load(container.id))  # refused if started meanwhile, gone if removed
        except ImagekitError:
            continue
        removed.append(container.id)
        freed += size
    if removed:
        click.echo("Deleted Containers:\n" + "\n".join(removed) + "\n")
    click.echo(f"Total reclaimed space: {human_size(freed)}")


def inspect_container(runtime: Runtime, c: Container) -> dict[str, Any]:
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.argv[0],
        "Args": list(c.argv[1:]),
        "State": {"Status": c.state, "Running": c.state == "running", "OOMKilled": c.oom_killed, "Pid": c.pid,
                  "ExitCode": c.exit_code, "Error": c.error, "StartedAt": c.started_at, "FinishedAt": c.finished_at},
        "Image": c.image_id,
        "Name": "/" + c.name,
        "LogPath": str(runtime.containers.log_path(c.id)),
        "HostConfig": {"Memory": c.limits.get("memory", 0), "NanoCpus": int(c.limits.get("cpus", 0) * 1e9),
                       "PidsLimit": c.limits.get("pids", 0), "ReadonlyRootfs": bool(c.spec["rootfs"]["readonly"]),
                       "NetworkMode": c.network or c.spec["network"], "CapAdd": None, "Init": c.spec.get("init", False),
                       "AutoRemove": c.auto_remove, "Capabilities": c.spec["capabilities"]},
        "Mounts": list(c.mounts),
        "NetworkSettings": {"IPAddress": c.ip, "Ports": _port_map(c)},
        "Config": c.config,
        "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": c.spec["rootfs"]["upper"]}},
    }


def _port_map(c: Container) -> dict[str, list[dict[str, str]]]:
    """docker inspect's NetworkSettings.Ports: each published private port with its host bindings."""
    ports: dict[str, list[dict[str, str]]] = {}
    for b in _bindings(c):
        ports.setdefault(b.private, []).append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
    return ports


@cli.group("volume")
def volume() -> None:
    """Named volumes (ROOT/volumes/NAME/_data)."""


@volume.command("create")
@click.argument("name", required=False, default="")
@click.pass_context
def volume_create(ctx: click.Context, name: str) -> None:
    """Create a volume (a generated name when none is given)."""
    from imagekit.runtime.options import volume_name

    click.echo(_runtime(ctx).volumes.create(volume_name(name) if name else "").name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only the names.")
@click.pass_context
def volume_ls(ctx: click.Context, quiet: bool) -> None:
    """List volumes."""
    volumes = _runtime(ctx).volumes.all()
    if not quiet:
        click.echo("DRIVER    VOLUME NAME")
    for item in volumes:
        click.echo(item.name if quiet else f"local     {item.name}")


@volume.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="A Go template per volume, e.g. '{{.Mountpoint}}'.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def volume_inspect(ctx: click.Context, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show volumes as JSON; each missing one is an error (exit 1)."""
    from imagekit.cli.inspect import show

    volumes = _runtime(ctx).volumes
    show(ctx, names, fmt, lambda name: volumes.get(name).inspect())


@volume.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def volume_rm(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Remove volumes no container uses."""
    runtime = _runtime(ctx)
    in_use = runtime.volumes_in_use()
    for name in names:
        runtime.volumes.remove(name, in_use)
        click.echo(name)


@volume.command("prune")
@click.option("-a", "--all", "all_volumes", is_flag=True, help="Named volumes too, not only anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not ask (imagekit never asks; accepted for docker's scripts).")
@click.pass_context
def volume_prune(ctx: click.Context, all_volumes: bool, force: bool) -> None:
    """Remove volumes no container uses."""
    runtime = _runtime(ctx)
    removed = runtime.volumes.prune(runtime.volumes_in_use(), all_volumes=all_volumes)
    if removed:
        click.echo("Deleted Volumes:\n" + "\n".join(removed))
    click.echo(f"Total reclaimed volumes: {len(removed)}")

