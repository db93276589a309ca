"""The `imagekit` command's entry point, its global options and the edge where failures become messages.

An ImagekitError prints as one line on stderr with exit status 1, a usage error exits 2 (click's convention),
Ctrl-C exits 130. Tracebacks are for bugs only. main() tries the click-free run path first
(imagekit.cli.fastpath: `import click` alone costs about `runc run`'s whole time) and hands everything that
path declines to click (imagekit.cli.group, where the command groups register). This module must not import
click, nor anything of a command: both paths start here.
The CLI is also the only place where registry and store are wired together.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from pathlib import Path

from imagekit import log
from imagekit.cli.optionspec import OptionSpec
from imagekit.errors import ImagekitError

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import NoReturn


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


#: The options before the command; start() takes them as its keywords.
GLOBAL_OPTIONS = (
    OptionSpec(
        ("--root",), "root", type="dir", envvar="IMAGEKIT_ROOT", metavar="DIR",
        help="Store root (an OCI image layout). Default: /var/lib/imagekit as root, else $XDG_DATA_HOME/imagekit "
        "(~/.local/share/imagekit).",
    ),
    OptionSpec(("--debug",), "debug", is_flag=True, help="Log requests and decisions to stderr (never secrets)."),
    OptionSpec(
        ("--insecure-registry",), "insecure_registries", multiple=True, metavar="HOST[:PORT]",
        envvar="IMAGEKIT_INSECURE_REGISTRIES",
        help="Allow plain HTTP and unverified TLS for this registry (repeatable; loopback needs no flag).",
    ),
    OptionSpec(
        ("--tls-verify",), "tls_verify", type="bool", default=True, metavar="BOOL",
        help="Verify registries' TLS certificates (default true; --tls-verify=false only if you must).",
    ),
    OptionSpec(("--no-tls-verify",), "no_tls_verify", is_flag=True, help="Same as --tls-verify=false."),
    OptionSpec(
        ("--certs-dir",), "certs_dir", type="existing-dir", envvar="IMAGEKIT_CERTS_D", metavar="DIR",
        help="Per-registry CAs and client certificates as DIR/HOST[:PORT]/ca.crt (+ client.cert/.key); must exist. "
        "Default: /etc/docker/certs.d and /etc/containers/certs.d.",
    ),
    OptionSpec(
        ("--registry-mirror",), "registry_mirrors", multiple=True, metavar="URL", envvar="IMAGEKIT_REGISTRY_MIRRORS",
        help="Pull docker.io images from this mirror first, falling back to Docker Hub (repeatable; the variable "
        "takes a comma-separated list). Default: registry-mirrors in the settings file ($IMAGEKIT_CONFIG, default "
        "$XDG_CONFIG_HOME/imagekit/config.json).",
    ),
)


def start(
    root: Path | None,
    debug: bool,
    insecure_registries: tuple[str, ...],
    tls_verify: bool,
    no_tls_verify: bool,
    certs_dir: Path | None,
    registry_mirrors: tuple[str, ...],
) -> Context:
    """The global options' effect, once the command is resolved (its module imported): what both paths run
    before the command itself."""
    _started()
    configure_logging(debug)
    return Context(
        root or default_root(),
        debug,
        insecure_registries=insecure_registries,
        tls_verify=tls_verify and not no_tls_verify,
        certs_dir=certs_dir,
        registry_mirrors=registry_mirrors,
    )


def _started() -> None:
    """Start-up is over: the command is resolved (its module imported) and start() runs before it. What
    start-up made (modules, classes, click's parameters) lives until exit, so main() runs it with the collector
    off and it is frozen here (gc.freeze): no collection scans it again, the exit's included, which is a tenth
    of a short `imagekit run`. The collector is back on for what the command itself makes."""
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


def echo(text: str, *, err: bool = False) -> None:
    """A line to stdout (or stderr), flushed at once, as click.echo writes it: the run path must not import click."""
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def report_error(err: ImagekitError) -> None:
    """An expected failure as the one line users see (`imagekit: ...` on stderr)."""
    echo(f"imagekit: {err}", err=True)


def aborted() -> NoReturn:
    """click's Abort (its main turns ^C and EOF during a command into one) as the line users see."""
    echo("imagekit: aborted", err=True)
    sys.exit(130)


def console() -> NoReturn:
    """The `imagekit` command (and `python -m imagekit`): main(), then the process ends at once. The interpreter's
    teardown would free the objects of the ~130 modules a command loaded one by one, 7 ms of a 70 ms
    `imagekit run --rm` here, for memory the kernel takes back at exit anyway. What main() returns from is
    finished (imagekit leaves no atexit handler, running thread or open file behind a command), so all that
    is left to do is what the teardown would: flush stdout and stderr, and turn sys.exit's value into a status."""
    try:
        main()
        status = 0
    except SystemExit as exit:
        status = _exit_status(exit.code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away, a stream already closed
            status = status or 141
    os._exit(status)


def _exit_status(code: object) -> int:
    """sys.exit's rule: None is 0, an integer is the status, anything else is printed on stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the CLI and turns every expected failure into one line."""
    gc.disable()  # until _started(): start-up makes only long-lived objects, collecting them is wasted work
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        status = _dispatch(args)
    except ImagekitError as err:
        report_error(err)
        sys.exit(1)
    except KeyboardInterrupt:
        echo("imagekit: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as err:
        # A safety net, not the design: modules translate the OS errors they expect into ImagekitErrors.
        where = f": {err.filename}" if err.filename else ""
        echo(f"imagekit: {err.strerror or err}{where}", err=True)
        sys.exit(1)
    finally:
        gc.enable()  # a usage error or --help ends before _started()
    if isinstance(status, int) and status:  # a command's ctx.exit(N): it reported its failures itself
        sys.exit(status)


def _dispatch(args: list[str]) -> object:
    """The run path when fastpath understands every argument, else click's: the command's status."""
    from imagekit.cli import fastpath

    parsed = fastpath.parse(args)
    if parsed is None:
        from imagekit.cli.group import click_main

        return click_main(args)
    return fastpath.run(parsed)
