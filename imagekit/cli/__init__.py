"""The `imagekit` command: a thin click layer over the library.

This is the edge where failures become messages: an ImagekitError prints as one line on stderr with
exit status 1, a usage error exits 2 (click's convention), Ctrl-C exits 130. Tracebacks are for bugs
only. Command groups live in sibling modules, one per area, and register themselves on `cli` below
when COMMAND_MODULES has them imported.
The CLI is also the only place where registry and store are wired together.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import sys
from pathlib import Path

import click

from imagekit import __version__, log
from imagekit.errors import ImagekitError


class Context:
    """What every command needs: where the store lives, how chatty to be, how to trust registries, and
    the registry mirrors given on the command line (empty: the settings file decides)."""

    def __init__(
        self,
        root: Path,
        debug: bool,
        *,
        insecure_registries: tuple[str, ...] = (),
        tls_verify: bool = True,
        certs_dir: Path | None = None,
        registry_mirrors: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.debug = debug
        self.insecure_registries = insecure_registries
        self.tls_verify = tls_verify
        self.certs_dir = certs_dir
        self.registry_mirrors = registry_mirrors


#: Command -> the sibling module that defines it (and registers it on `cli` when imported).
COMMAND_MODULES = {
    "login": "auth",
    "logout": "auth",
    "images": "store",
    "tag": "store",
    "rmi": "store",
    "inspect": "inspect",
    "prune": "store",
    "import": "store",
    "image": "store",
    "pull": "registry",
    "push": "registry",
    "tags": "registry",
    "manifest": "registry",
    "unpack": "layers",
    "build": "build",
    "builder": "build",
    "run": "run",
    "ps": "containers",
    "port": "containers",
    "exec": "run",
    "start": "containers",
    "stop": "containers",
    "kill": "containers",
    "rm": "containers",
    "logs": "containers",
    "container": "containers",
    "volume": "containers",
    "stats": "system",
    "system": "system",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is asked for: start-up is a large part of a
    short command's time (`imagekit pull` needs requests, never the layer code; `images` needs neither)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None:
            importlib.import_module(f"imagekit.cli.{module}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imagekit")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="IMAGEKIT_ROOT",
    show_envvar=True,
    default=None,
    metavar="DIR",
    help="Store root (an OCI image layout). Default: /var/lib/imagekit as root, else $XDG_DATA_HOME/imagekit "
    "(~/.local/share/imagekit).",
)
@click.option("--debug", is_flag=True, help="Log requests and decisions to stderr (never secrets).")
@click.option(
    "--insecure-registry",
    "insecure_registries",
    multiple=True,
    metavar="HOST[:PORT]",
    envvar="IMAGEKIT_INSECURE_REGISTRIES",
    show_envvar=True,
    help="Allow plain HTTP and unverified TLS for this registry (repeatable; loopback needs no flag).",
)
@click.option(
    "--tls-verify",
    type=click.BOOL,
    default=True,
    is_flag=False,
    flag_value=True,
    metavar="BOOL",
    help="Verify registries' TLS certificates (default true; --tls-verify=false only if you must).",
)
@click.option("--no-tls-verify", is_flag=True, help="Same as --tls-verify=false.")
@click.option(
    "--certs-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="IMAGEKIT_CERTS_D",
    show_envvar=True,
    default=None,
    metavar="DIR",
    help="Per-registry CAs and client certificates as DIR/HOST[:PORT]/ca.crt (+ client.cert/.key); must exist. "
    "Default: /etc/docker/certs.d and /etc/containers/certs.d.",
)
@click.option(
    "--registry-mirror",
    "registry_mirrors",
    multiple=True,
    metavar="URL",
    envvar="IMAGEKIT_REGISTRY_MIRRORS",
    show_envvar=True,
    help="Pull docker.io images from this mirror first, falling back to Docker Hub (repeatable; the variable "
    "takes a comma-separated list). Default: registry-mirrors in the settings file ($IMAGEKIT_CONFIG, default "
    "$XDG_CONFIG_HOME/imagekit/config.json).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    root: Path | None,
    debug: bool,
    insecure_registries: tuple[str, ...],
    tls_verify: bool,
    no_tls_verify: bool,
    certs_dir: Path | None,
    registry_mirrors: tuple[str, ...],
) -> None:
    """imagekit: build, move and run OCI images without a daemon."""
    _started()
    configure_logging(debug)
    ctx.obj = Context(
        root or default_root(),
        debug,
        insecure_registries=insecure_registries,
        tls_verify=tls_verify and not no_tls_verify,
        certs_dir=certs_dir,
        registry_mirrors=registry_mirrors,
    )


def _started() -> None:
    """Start-up is over: click has resolved the command (imported its module) and runs this group's callback
    before it. What start-up made (modules, classes, click's parameters) lives until exit, so main() runs it
    with the collector off and it is frozen here (gc.freeze): no collection scans it again, the exit's included,
    which is a tenth of a short `imagekit run`. The collector is back on for what the command itself makes."""
    gc.freeze()
    gc.enable()


def configure_logging(debug: bool) -> None:
    """`--debug` sends imagekit's loggers to stderr; modules log only what is safe to show. Set up when logging
    is first used (imagekit.log): a command that logs nothing does not import it."""
    log.when_logging(functools.partial(_log_to_stderr, debug))


@functools.cache
def _stderr_handler() -> type:
    """The handler class, made once logging is imported."""
    import logging

    class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to whatever sys.stderr is at the time (tests swap it between invocations)."""

        @property  # type: ignore[override]
        def stream(self):  # type: ignore[no-untyped-def]
            return sys.stderr

        @stream.setter
        def stream(self, _value: object) -> None:
            pass

    return StderrHandler


def _log_to_stderr(debug: bool) -> None:
    import logging

    logger = logging.getLogger("imagekit")
    for handler in [h for h in logger.handlers if isinstance(h, _stderr_handler())]:
        logger.removeHandler(handler)
    handler = _stderr_handler()()
    handler.setFormatter(logging.Formatter("imagekit: %(levelname).1s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def default_root() -> Path:
    """Root's store is system-wide, like podman's; other users get one under their XDG data home."""
    if os.geteuid() == 0:
        return Path("/var/lib/imagekit")
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "imagekit"


def report_error(err: ImagekitError) -> None:
    """An expected failure as the one line users see (`imagekit: ...` on stderr)."""
    click.echo(f"imagekit: {err}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the CLI and turns every expected failure into one line."""
    gc.disable()  # until _started(): start-up makes only long-lived objects, collecting them is wasted work
    try:
        status = cli.main(args=argv, prog_name="imagekit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("imagekit: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except ImagekitError as err:
        report_error(err)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("imagekit: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as err:
        # A safety net, not the design: modules translate the OS errors they expect into ImagekitErrors.
        where = f": {err.filename}" if err.filename else ""
        click.echo(f"imagekit: {err.strerror or err}{where}", err=True)
        sys.exit(1)
    finally:
        gc.enable()  # a usage error or --help ends before _started()
    if isinstance(status, int) and status:  # a command's ctx.exit(N): it reported its failures itself
        sys.exit(status)

