"""What `imagekit run` does with its parsed arguments, and the options it takes, as data (RUN_OPTIONS).

Click-free: the click command (imagekit.cli.run) and the click-free run path (imagekit.cli.fastpath) both parse
RUN_OPTIONS and call run_container(). Start-up time is part of every `run`: this module imports the runtime and
nothing of the registry unless the image must be pulled (requests alone costs more than runc's whole start).
imagekit's own failures exit 125, as docker's do.

The foreground streams are attached as docker's client attaches them: stdin only with -i (else an empty
one); with -t the container's pty (imagekit.sandbox.console) carries stdout and stderr as one stream, and
with -it this process's terminal is raw for the session, so that ^C and ^Z are bytes for the container's
terminal to turn into its signals, not signals to imagekit.
"""

from __future__ import annotations

import os
import sys
import termios
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from tty import setraw

from imagekit.cli import Context, echo, report_error
from imagekit.cli.optionspec import OptionSpec
from imagekit.errors import ContainerError, ImageNotFound, ImagekitError
from imagekit.runtime.options import RunOptions, default_network, discarded_ports, parse_cpus, parse_env, parse_env_file, parse_mount, parse_size, parse_tmpfs, parse_volume

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any, NoReturn
    from imagekit.runtime.ports import PortSpec


#: docker's status for a failure of the runtime itself (not of the container's command).
RUN_FAILED = 125
#: why a caller without root gets --network host by default (where rootless podman gives slirp4netns or pasta)
ROOTLESS_NETWORK = "without root there is no bridge network: the container shares the host's network (--network host; --network none isolates it)"


#: `run`'s options, in --help's order; run_container() gets them as `flags`, by dest.
RUN_OPTIONS = (
    OptionSpec(("--rm",), "auto_remove", is_flag=True, help="Remove the container (and its anonymous volumes) when it exits."),
    OptionSpec(("-d", "--detach"), "detach", is_flag=True, help="Run in the background under a supervisor; print the container ID."),
    OptionSpec(("--name",), "name", default="", help="A unique name (default: a generated adjective_scientist)."),
    OptionSpec(("-e", "--env"), "env", multiple=True, metavar="K=V", help="Set (or with K alone, pass on) a variable."),
    OptionSpec(("--env-file",), "env_files", multiple=True, metavar="FILE", help="KEY=VALUE lines, as docker reads them."),
    OptionSpec(("-v", "--volume"), "volumes", multiple=True, metavar="SRC:DST[:ro|rw]",
               help="Bind a host path or a named volume; -v DST makes an anonymous volume."),
    OptionSpec(("--mount",), "mounts", multiple=True, metavar="type=bind|volume|tmpfs,...", help="docker's --mount syntax."),
    OptionSpec(("--tmpfs",), "tmpfs", multiple=True, metavar="DST[:OPTS]", help="Mount a tmpfs."),
    OptionSpec(("-w", "--workdir"), "workdir", default="", help="Working directory inside the container."),
    OptionSpec(("-u", "--user"), "user", default="", metavar="USER[:GROUP]", help="User (name or uid) and group to run as."),
    OptionSpec(("--entrypoint",), "entrypoint", default=None, help="Replace the image's Entrypoint (and clear its Cmd)."),
    OptionSpec(("--hostname",), "hostname", default="", help="Hostname (default: the host's with --network host, else the short ID)."),
    OptionSpec(("--network",), "network", choices=("bridge", "host", "none"), default=None,
               help="bridge (the default as root) gives an address on imagekit0 (10.88.0.0/16, NAT to the outside), as docker's "
                    "default; host (the default without root, which has no bridge) shares the host's network; none gives only loopback."),
    OptionSpec(("-p", "--publish"), "publish", multiple=True, metavar="[IP:][HOST:]CTR[/PROTO]",
               help="Publish a container port on the host; ranges as docker's. Discarded (with a warning) off the bridge."),
    OptionSpec(("-P", "--publish-all"), "publish_all", is_flag=True, help="Publish every EXPOSEd port on a free host port (on the bridge)."),
    OptionSpec(("-m", "--memory"), "memory", default="", metavar="SIZE", help="Memory limit (256m, 1g; at least 6m)."),
    OptionSpec(("--cpus",), "cpus", default="", metavar="N", help="CPU quota in CPUs (0.5: half of one)."),
    OptionSpec(("--pids-limit",), "pids_limit", type="int", default=0, metavar="N", help="Most processes at once."),
    OptionSpec(("--read-only",), "read_only", is_flag=True, help="Mount the root filesystem read-only."),
    OptionSpec(("--init",), "init", is_flag=True, help="Run a tiny init as PID 1 that forwards signals and reaps zombies."),
    OptionSpec(("--cap-add",), "cap_add", multiple=True, metavar="CAP", help="Add a capability (or ALL)."),
    OptionSpec(("--cap-drop",), "cap_drop", multiple=True, metavar="CAP", help="Drop a capability (or ALL)."),
    OptionSpec(("--privileged",), "privileged", is_flag=True, help="Every capability."),
    OptionSpec(("-i", "--interactive"), "interactive", is_flag=True, help="Pass stdin on (else the command reads an empty one)."),
    OptionSpec(("-t", "--tty"), "tty", is_flag=True, help="Give the command a terminal (a pty; stdout and stderr become one stream)."),
)


def run_container(obj: Context, image: str, command: tuple[str, ...], **flags: object) -> NoReturn:
    """Run COMMAND (default: the image's) in a new container of IMAGE, pulling IMAGE when missing; exits with
    the container's status, or 125 with one line when imagekit itself fails."""
    try:
        detach = bool(flags["detach"])
        check_terminal(bool(flags["interactive"]) and not detach, bool(flags["tty"]))
        options = _options(image, command, flags)
        if flags["network"] is None and options.network == "host":
            echo(f"imagekit: note: {ROOTLESS_NETWORK}", err=True)
        warning = discarded_ports(options)
        if warning:
            echo(f"WARNING: {warning}", err=True)
        status = _run(obj, options, detach, bool(flags["interactive"]))
    except ImagekitError as err:
        report_error(err)
        sys.exit(RUN_FAILED)
    sys.exit(status)


def _publish(texts: tuple[str, ...]) -> tuple[PortSpec, ...]:
    """-p's specs; runtime.ports is imported only when there are some: it brings the network modules
    (socket, json, hashlib...), which `run` without -p never needs."""
    if not texts:
        return ()
    from imagekit.runtime.ports import parse_publish

    return tuple(spec for text in texts for spec in parse_publish(text))


def _options(image: str, command: tuple[str, ...], flags: dict[str, object]) -> RunOptions:
    env: tuple[str, ...] = ()
    for path in flags["env_files"]:  # type: ignore[attr-defined]
        env += parse_env_file(path)
    env += parse_env(flags["env"])  # type: ignore[arg-type]
    volumes = tuple(parse_volume(v) for v in flags["volumes"])  # type: ignore[attr-defined]
    volumes += tuple(parse_mount(m) for m in flags["mounts"])  # type: ignore[attr-defined]
    volumes += tuple(parse_tmpfs(t) for t in flags["tmpfs"])  # type: ignore[attr-defined]
    return RunOptions(
        image=image, command=command, name=str(flags["name"]), env=env, volumes=volumes, workdir=str(flags["workdir"]),
        user=str(flags["user"]), entrypoint=flags["entrypoint"], hostname=str(flags["hostname"]),  # type: ignore[arg-type]
        network=flags["network"] or default_network(),  # type: ignore[arg-type]
        publish=_publish(flags["publish"]),  # type: ignore[arg-type]
        publish_all=bool(flags["publish_all"]),
        memory=parse_size(str(flags["memory"])) if flags["memory"] else 0,
        cpus=parse_cpus(str(flags["cpus"])) if flags["cpus"] else 0.0,
        pids_limit=int(flags["pids_limit"]),  # type: ignore[call-overload]
        read_only=bool(flags["read_only"]), init=bool(flags["init"]), cap_add=tuple(flags["cap_add"]),  # type: ignore[arg-type]
        cap_drop=tuple(flags["cap_drop"]), privileged=bool(flags["privileged"]), auto_remove=bool(flags["auto_remove"]),  # type: ignore[arg-type]
        tty=bool(flags["tty"]),
    )


def check_terminal(interactive: bool, tty: bool) -> None:
    """docker's refusal of -it when stdin is not a terminal (a pipe, a file): nothing could be typed into the pty."""
    if interactive and tty and not sys.stdin.isatty():
        raise ContainerError("the input device is not a TTY")


@contextmanager
def attached(interactive: bool, tty: bool) -> Iterator[dict[str, Any]]:
    """The stream keywords of Runtime.start and exec for a foreground session (see the module docstring):
    stdin, and with -t the terminal whose window size the pty follows. With -it the terminal is raw until the
    session ends, whatever ends it (SIGINT, SIGTERM and SIGHUP are forwarded to the container meanwhile)."""
    with ExitStack() as stack:
        stdin = None if interactive else stack.enter_context(open(os.devnull, "rb"))
        size_from = next((fd for fd in (1, 0) if os.isatty(fd)), None) if tty else None
        if interactive and tty:
            saved = termios.tcgetattr(0)
            setraw(0, termios.TCSANOW)  # not TCSAFLUSH: what was typed ahead goes to the container
            stack.callback(termios.tcsetattr, 0, termios.TCSADRAIN, saved)
        yield {"stdin": stdin, "size_from": size_from}


def _run(obj: Context, options: RunOptions, detach: bool, interactive: bool) -> int:
    from imagekit.runtime.container import Runtime
    from imagekit.store import Store

    store = Store(obj.root)
    runtime = Runtime(store)
    runtime.check(options)
    try:
        stored = store.find(options.image)
    except ImageNotFound:
        stored = _pull(obj, store, options.image)
    container = runtime.create(options, stored.image, options.image)
    if detach:
        runtime.start_detached(container)
        echo(container.id)
        return 0
    try:
        with attached(interactive, options.tty) as streams:
            final = runtime.start(container, **streams)
    except ImagekitError:
        runtime.remove(runtime.containers.load(container.id, refresh=False), force=True, volumes=True)
        raise
    if final.auto_remove:
        runtime.remove(final, volumes=True)
    return final.exit_code


def _pull(obj: Context, store: object, image: str):  # type: ignore[no-untyped-def]
    """Pulls a missing image as `imagekit pull` does (imports the registry code only now)."""
    from imagekit.cli.auth import registry_options
    from imagekit.fetch import pull_to_store
    from imagekit.reference import parse_reference

    echo(f"Unable to find image '{image}' locally", err=True)
    pull_to_store(parse_reference(image), store, registry_options(obj))  # type: ignore[arg-type]
    return store.find(image)  # type: ignore[attr-defined]
