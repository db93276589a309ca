"""`imagekit run` and `exec` as click commands: docker's flags over imagekit.runtime; imagekit's own failures
exit 125, as docker's do. run's options and body are click-free, in imagekit.cli.runner (the fast path of
imagekit.cli.fastpath reads the same table); its click options are built from that table here.
"""

from __future__ import annotations

import sys

import click

from imagekit.cli import report_error
from imagekit.cli.group import cli, click_options
from imagekit.cli.runner import RUN_FAILED, RUN_OPTIONS, attached, check_terminal, run_container
from imagekit.errors import ContainerError, ImagekitError
from imagekit.runtime.options import parse_env


@cli.command("run", context_settings={"allow_interspersed_args": False})
@click_options(RUN_OPTIONS)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, image: str, command: tuple[str, ...], **flags: object) -> None:
    """Run COMMAND (default: the image's) in a new container of IMAGE, pulling IMAGE when missing."""
    run_container(ctx.obj, image, command, **flags)


#: exec's options are run's of the same names: one definition of each.
EXEC_OPTIONS = tuple(next(spec for spec in RUN_OPTIONS if spec.dest == dest) for dest in ("env", "user", "workdir", "interactive", "tty"))


@cli.command("exec", context_settings={"allow_interspersed_args": False})
@click_options(EXEC_OPTIONS)
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, container: str, command: tuple[str, ...], env: tuple[str, ...], user: str, workdir: str,
          interactive: bool, tty: bool) -> None:
    """Run COMMAND in a running container: its namespaces, root and cgroup, as `docker exec`."""
    from imagekit.runtime.container import Runtime
    from imagekit.store import Store

    try:
        runtime = Runtime(Store(ctx.obj.root))
        if workdir and not workdir.startswith("/"):
            raise ContainerError(f"the working directory {workdir!r} is invalid: it needs to be an absolute path")
        check_terminal(interactive, tty)
        record = runtime.containers.find(container)
        with attached(interactive, tty) as streams:
            status = runtime.exec(record, command, env=parse_env(env), user=user, workdir=workdir, tty=tty, **streams)
    except ImagekitError as err:
        report_error(err)
        sys.exit(RUN_FAILED)
    sys.exit(status)


