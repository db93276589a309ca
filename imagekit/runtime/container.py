"""Containers' life cycle: create, start (in the foreground or under a supervisor), stop, kill, wait, remove.

A container is a persistent snapshot (its upper dir over the image's shared extracted layers), a
record under ROOT/containers/<id>/ (imagekit.runtime.state) and, while it runs, a cgroup with its
limits. Whoever calls sandbox.run() is the container's *supervisor*: the `imagekit run` process
itself in the foreground, or for `run -d` a double-forked Python process (conmon's job: it runs the
sandbox with output to ROOT/containers/<id>/container.log and records the exit status), so no
daemon stays resident. On the bridge network (imagekit.runtime.network) the supervisor connects the
container and publishes its ports (imagekit.runtime.ports: its threads serve the proxies) before the
sandbox runs, and releases both when it exits; `rm` releases again (idempotent) and `ps` releases what
a killed supervisor left (network.cleanup_stale). A supervisor records the sandboxed process's pid once it runs; `stop`, `kill`
and `rm -f` signal that pid and wait for the supervisor to record the end. A start that fails leaves
nothing: no snapshot, no cgroup, no record (`run`), or the record as it was (`start`).

Imports: stdlib, imagekit.errors, config, image, snapshots, sandbox, store, runtime; users only for a container with a user.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path

from imagekit import sandbox
from imagekit import values
from imagekit.config import ImageConfig
from imagekit.errors import ContainerError, ImagekitError
from imagekit.image import Image
from imagekit.runtime import process
from imagekit.runtime.options import RunOptions, VolumeSpec
from imagekit.runtime.state import Container, Containers, now, process_start, supervisor_alive
from imagekit.runtime.volumes import Volumes, copy_up
from imagekit.sandbox import Mount, Rootfs, Spec, cgroups
from imagekit.snapshots import Snapshots
from imagekit.store import Store

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any
    from imagekit.runtime import network, ports


#: a network namespace (a path) the bridge, its NAT rules and proxies live in instead of the host's: tests set it so
#: the machine's own network is never touched; unset in production.
HOST_NETNS_ENV = "IMAGEKIT_HOST_NETNS"
#: /etc/hosts of a container with its own (loopback-only) network namespace, as docker writes it.
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
_TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")


class Runtime:
    """The containers of one store (see the module docstring). `cgroup_root` is where cgroups are made."""

    def __init__(self, store: Store, *, cgroup_root: str = cgroups.DEFAULT_ROOT, host_netns: str | None = None) -> None:
        self.store = store
        self.host_netns = os.environ.get(HOST_NETNS_ENV, "") if host_netns is None else host_netns
        self.containers = Containers(store)
        self.volumes = Volumes(store)
        self.cgroup_root = cgroup_root
        #: a caller without root runs containers with isolation "rootless" (see _check_rootless), without cgroups
        self.rootless = os.geteuid() != 0
        self._snapshots: Snapshots | None = None

    @property
    def snapshots(self) -> Snapshots:
        if self._snapshots is None:
            self._snapshots = Snapshots(self.store)
        return self._snapshots

    @property
    def bridge(self) -> network.Bridge:
        from imagekit.runtime import network  # here: only bridge containers need the network modules and their imports

        return network.bridge(self.store.root, self.host_netns)

    # --- create ------------------------------------------------------------------------------------------
    def create(self, options: RunOptions, image: Image, image_name: str) -> Container:
        """A new container of `image` (state "created"): its snapshot, volumes and record. Nothing is left
        when this raises."""
        config = ImageConfig.from_json(image.config)
        argv = process.argv(config, options)
        limits = self.check(options)
        capabilities = process.capabilities(options)
        stop_signal = process.stop_signal(config)
        publish = _publish_specs(config, options)
        with self.containers.reserve(options.name) as (container_id, name), ExitStack() as undo:
            rootfs = self.snapshots.prepare(container_id, self.snapshots.lowers(image), persistent=True)
            undo.callback(self.snapshots.remove, container_id)
            rootfs = values.replace(rootfs, readonly=options.read_only)
            mounts, anonymous = self._mounts(config, options, rootfs)
            undo.callback(lambda: [self.volumes.remove(v, set()) for v in anonymous])
            user = options.user or config.user
            uid, gid, groups = sandbox.call(rootfs, _resolve_user(), user) if user else (0, 0, ())
            if self.rootless:
                if (uid, gid) != (0, 0):
                    raise ContainerError(f"--user {user}: without root only your own uid and gid are mapped into the container, as root (0:0)")
                groups = ()  # setgroups is denied in a user namespace that maps one id
            hostname = options.hostname or (os.uname().nodename if options.network == "host" else container_id[:12])
            spec = Spec(
                rootfs=rootfs,
                argv=argv,
                env=process.environment(config, options, hostname, uid),
                cwd=options.workdir or config.working_dir or "/",
                uid=uid,
                gid=gid,
                groups=groups,
                hostname=hostname,
                network="host" if options.network == "bridge" else options.network,  # the bridge's namespace is joined at start
                isolation="rootless" if self.rootless else "namespaces",
                mounts=tuple(mounts),
                etc_files=self._etc_files(container_id, hostname, options.network),
                capabilities=capabilities,
                init=options.init,
                mask_paths=not options.privileged,
                tty=options.tty,
            )
            container = Container(
                id=container_id, name=name, image=image_name, image_id=str(image.manifest.config.digest), argv=argv,
                created=now(), spec=values.asdict(spec), limits=values.asdict(limits), stop_signal=stop_signal,
                auto_remove=options.auto_remove, volumes=tuple(anonymous), network=options.network,
                publish=tuple(values.asdict(item) for item in publish),
                mounts=tuple({"Type": v.kind, "Source": v.source, "Destination": v.target, "RW": not v.readonly} for v in options.volumes),
                config={"Hostname": hostname, "Env": list(spec.env), "Cmd": list(options.command or config.cmd),
                        "Entrypoint": list(config.entrypoint) if options.entrypoint is None else [options.entrypoint],
                        "WorkingDir": spec.cwd, "User": user, "Image": image_name, "Labels": dict(config.labels),
                        "Tty": options.tty},
            )
            self.containers.save(container)
            undo.pop_all()
        return container

    def check(self, options: RunOptions) -> cgroups.Limits:
        """Refuses, before anything is made or pulled, what this runtime cannot give `options`: limits docker refuses,
        and without root the bridge and any limit (see _check_rootless). Returns the limits."""
        limits = cgroups.Limits(options.memory, options.cpus, options.pids_limit)
        limits.check()
        if self.rootless:
            _check_rootless(options)
        return limits

    def _mounts(self, config: ImageConfig, options: RunOptions, rootfs: Rootfs) -> tuple[list[Mount], list[str]]:
        """The sandbox mounts for -v/--mount/--tmpfs, plus an anonymous volume for each image VOLUME
        that none covers; returns them and the anonymous volumes made (removed if creation fails).
        A volume still empty gets what the image has at its target, as docker fills one."""
        mounts: list[Mount] = []
        anonymous: list[str] = []
        covered = {v.target for v in options.volumes}
        wanted = list(options.volumes) + [VolumeSpec("volume", os.path.normpath(path)) for path in config.volumes
                                          if os.path.normpath(path) not in covered]
        try:
            for item in wanted:
                mode = ("ro",) if item.readonly else ("rw",)
                if item.kind == "tmpfs":
                    mounts.append(Mount(item.target, "tmpfs", "", (*_TMPFS_DEFAULTS, *item.options, *(("ro",) if item.readonly else ()))))
                elif item.kind == "bind":
                    if not os.path.exists(item.source):
                        raise ContainerError(f"invalid mount config: bind source path does not exist: {item.source}")
                    mounts.append(Mount(item.target, "bind", item.source, ("rbind", *mode)))
                else:
                    volume = self.volumes.create(item.source)
                    if not item.source:
                        anonymous.append(volume.name)
                    if not any(volume.mountpoint.iterdir()):
                        sandbox.call(rootfs, copy_up, item.target, str(volume.mountpoint))
                    mounts.append(Mount(item.target, "bind", str(volume.mountpoint), mode))
        except BaseException:
            for name in anonymous:
                self.volumes.remove(name, set())
            raise
        return mounts, anonymous

    def _etc_files(self, container_id: str, hostname: str, network: str) -> tuple[tuple[str, str], ...]:
        """/etc/hostname (and /etc/hosts for a private network) written to the state dir; the host's
        /etc/hosts and /etc/resolv.conf with --network host, as docker gives them."""
        directory = self.containers.dir(container_id)
        (directory / "hostname").write_text(hostname + "\n")
        files = [(str(directory / "hostname"), "/etc/hostname")]
        if network == "host":
            files.append(("/etc/hosts", "/etc/hosts"))
        else:
            (directory / "hosts").write_text(HOSTS + f"127.0.0.1\t{hostname}\n")
            files.append((str(directory / "hosts"), "/etc/hosts"))
        if os.path.exists("/etc/resolv.conf") and network == "host":
            files.append(("/etc/resolv.conf", "/etc/resolv.conf"))
        return tuple(files)

    # --- start -------------------------------------------------------------------------------------------
    def start(self, container: Container, *, stdin: Any = None, stdout: Any = None, stderr: Any = None,
              started: Callable[[int], None] | None = None, size_from: int | None = None) -> Container:
        """Runs the container in this process (its supervisor) until it exits; returns the exited record.
        The record says "running" from the moment the process runs (with its pid). A sandbox that cannot
        be set up raises (the record says exited 125 with the error). A container made with `tty` relays
        stdin and stdout through its pty (stderr unused), whose window size follows the terminal `size_from`."""
        if supervisor_alive(container.supervisor, container.supervisor_start) and container.state == "running":
            raise ContainerError(f"container {container.name} is already running")
        cgroup = self._cgroup(container.id) if self.rootless else cgroups.create(container.id, cgroups.Limits(**container.limits), root=self.cgroup_root)
        me = os.getpid()
        record = values.replace(container, state="running", supervisor=me, supervisor_start=process_start(me),
                                     started_at=now(), finished_at="", pid=0, exit_code=0, oom_killed=False, error="")
        status, error = 125, ""
        published: ports.Published | None = None
        try:

            def on_start(pid: int) -> None:
                nonlocal record
                record = values.replace(record, pid=pid)
                self.containers.save(record)
                if started is not None:
                    started(pid)

            spec = values.replace(spec_from_json(container.spec), cgroups=cgroup.dirs)
            if container.network == "bridge":
                from imagekit.runtime import network  # here: only bridge containers need the network modules and their imports

                self.containers.save(record)  # running from now: `stop` and `rm -f` find its supervisor while it connects
                endpoint = network.connect(self.bridge, container.id, spec.hostname, names=(container.name,),
                                           supervisor=(record.supervisor, record.supervisor_start))
                if container.publish:
                    from imagekit.runtime import ports  # here: only a container that publishes ports needs the proxies

                    published = ports.publish(self.bridge, container.id, endpoint.address, [ports.PortSpec(**item) for item in container.publish])
                spec = values.replace(spec, netns=endpoint.netns, etc_files=endpoint.etc_files)
                bindings = published.bindings if published is not None else ()
                record = values.replace(record, ip=endpoint.address, ports=tuple(values.asdict(b) for b in bindings))
            status = sandbox.run(spec, stdin=stdin, stdout=stdout, stderr=stderr, started=on_start, size_from=size_from).status
        except ImagekitError as err:
            error = str(err)
            raise
        finally:
            if published is not None:
                published.close()
            if container.network == "bridge":
                self._release(container)
            oom = cgroup.oom_killed()
            with suppress(ImagekitError):
                cgroup.remove()
            record = values.replace(record, state="exited", exit_code=status, oom_killed=oom, pid=0, finished_at=now(), error=error,
                                         ip="", ports=())
            # not removed by `rm -f` meanwhile, nor about to be removed by --rm (a write saved on the quick path)
            if self.containers.dir(container.id).is_dir() and not (record.auto_remove and not error):
                self.containers.save(record)
        return record

    def start_detached(self, container: Container) -> Container:
        """Starts the container under a double-forked supervisor (output to its log file) and returns once
        the process runs; raises the supervisor's error if it could not start it."""
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read_end)
            try:
                os.setsid()
                if os.fork() == 0:
                    self._supervise(container, write_end)
            finally:
                os._exit(0)
        os.close(write_end)
        os.waitpid(child, 0)
        with open(read_end, "rb") as pipe:
            answer = pipe.read().decode(errors="replace")
        if answer != "\n":
            raise ContainerError(answer.strip() or f"the supervisor of container {container.short_id} died before starting it")
        return self.containers.load(container.id)

    def _supervise(self, container: Container, report: int) -> None:
        """The supervisor's body: stdio away from the caller's terminal and pipes, output to the log."""
        devnull = os.open(os.devnull, os.O_RDWR)
        log = os.open(self.containers.log_path(container.id), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        for number in (0, 1, 2):
            os.dup2(devnull, number)

        def started(_pid: int) -> None:
            os.write(report, b"\n")
            os.close(report)

        try:
            record = self.start(container, stdin=devnull, stdout=log, stderr=log, started=started)
        except ImagekitError as err:
            with suppress(OSError):
                os.write(report, str(err).encode())
            if container.auto_remove:
                self.remove(self.containers.load(container.id), force=True, volumes=True)
            return
        if record.auto_remove:
            self.remove(record, force=True, volumes=True)

    # --- signals, waiting, removal -------------------------------------------------------------------------
    def kill(self, container: Container, number: int = signal.SIGKILL) -> None:
        """Sends signal `number` to the container's process; ContainerError when it is not running."""
        if container.state != "running" or not container.pid:
            raise ContainerError(f"container {container.name} is not running")
        try:
            os.kill(container.pid, number)
        except ProcessLookupError:
            pass

    def wait(self, container: Container, timeout: float | None = None) -> Container | None:
        """Waits until the container's supervisor is gone (at most `timeout` seconds); the final record,
        or None on timeout."""
        if container.state == "running":
            try:
                pidfd = os.pidfd_open(container.supervisor)
            except ProcessLookupError:
                pidfd = None
            if pidfd is not None:
                try:
                    if process_start(container.supervisor) == container.supervisor_start:
                        if not select.select([pidfd], [], [], timeout)[0]:
                            return None
                finally:
                    os.close(pidfd)
        return self.containers.load(container.id)

    def stop(self, container: Container, timeout: float = 10) -> Container:
        """The image's stop signal, then SIGKILL after `timeout` seconds, as `docker stop`."""
        if container.state != "running":
            return container
        with suppress(ContainerError):
            self.kill(container, container.stop_signal)
        final = self.wait(container, timeout)
        if final is None:
            with suppress(ContainerError):
                self.kill(self.containers.load(container.id), signal.SIGKILL)
            final = self.wait(container)
        assert final is not None
        return final

    def remove(self, container: Container, *, force: bool = False, volumes: bool = False) -> None:
        """Deletes the container: its process (with `force`), cgroup, snapshot, record and, with
        `volumes`, its anonymous volumes. A running container without `force` is refused."""
        if container.state == "running":
            if not force:
                raise ContainerError(f"cannot remove container {container.name}: it is running (stop it first or use -f)")
            with suppress(ContainerError):
                self.kill(container, signal.SIGKILL)
            self.wait(container)
        if container.network == "bridge":
            self._release(container)
        with suppress(ImagekitError):
            self._cgroup(container.id).remove()
        self.snapshots.remove(container.id)
        self.containers.delete(container.id)
        if volumes:
            for name in container.volumes:
                with suppress(ImagekitError):
                    self.volumes.remove(name, set())

    def exec(self, container: Container, argv: tuple[str, ...], *, env: tuple[str, ...] = (), user: str = "", workdir: str = "",
             stdin: Any = None, stdout: Any = None, stderr: Any = None, tty: bool = False, size_from: int | None = None) -> int:
        """Runs argv in the running container (its namespaces, root and cgroup, as `docker exec`) and returns its
        status: the container's env with `env` over it, `user` (resolved in its /etc/passwd) and `workdir` instead
        of its own; with `tty` on a new pty of the container's devpts, as start()'s (and TERM=xterm unless set).
        ContainerError when it is not running."""
        if container.state != "running" or not container.pid:
            raise ContainerError(f"container {container.name} is not running")
        spec = spec_from_json(container.spec)
        merged = dict(word.split("=", 1) for word in spec.env if "=" in word)
        if tty:
            merged.setdefault("TERM", "xterm")  # as docker's exec -t, under the container's own and `env`
        merged.update(word.split("=", 1) for word in env if "=" in word)
        uid, gid, groups = _resolve_user()(f"/proc/{container.pid}/root", user) if user else (spec.uid, spec.gid, spec.groups)
        spec = values.replace(spec, argv=argv, env=tuple(f"{k}={v}" for k, v in merged.items()), cwd=workdir or spec.cwd,
                                   uid=uid, gid=gid, groups=groups, cgroups=self._cgroup(container.id).dirs, tty=tty)
        return sandbox.join(container.pid, spec, stdin=stdin, stdout=stdout, stderr=stderr, size_from=size_from).status

    def _cgroup(self, container_id: str) -> cgroups.Cgroup:
        """The container's cgroup (whether or not it exists now); an empty one (nothing to join or remove) without
        root, which no cgroup is delegated to."""
        return cgroups.Cgroup(cgroups.version(self.cgroup_root), ()) if self.rootless else cgroups.find(container_id, self.cgroup_root)

    def release_stale(self) -> None:
        """Releases the bridge's leases, links, rules and namespaces of every container without a live supervisor,
        whatever its store (network.cleanup_stale); nothing to do while no store of this host used the bridge, nor without
        root, which never has the bridge."""
        if self.rootless:
            return
        from imagekit.runtime import network  # here: only `ps` and the bridge's containers need the network modules

        bridge = self.bridge
        if (bridge.state / f"{bridge.name}.json").exists():
            network.cleanup_stale(bridge)

    def _release(self, container: Container) -> None:
        """The bridge's lease, link and rules of `container` given back."""
        from imagekit.runtime import network  # here: only bridge containers need the network modules and their imports

        network.release(self.bridge, container.id)

    def disk_paths(self, container: Container) -> list[Path]:
        """What the container holds on disk, all of which remove() deletes: its record directory (record,
        log, /etc files) and its snapshot (writable layer)."""
        return [self.containers.dir(container.id), self.store.root / "snapshots" / container.id]

    def volumes_in_use(self) -> set[str]:
        """Names of the volumes some container's mounts use."""
        used: set[str] = set()
        root = str(self.volumes.root) + "/"
        for container in self.containers.all(refresh=False):
            for mount in container.spec.get("mounts", ()):
                source = str(mount.get("source", ""))
                if source.startswith(root):
                    used.add(Path(source).parent.name)
        return used


def _resolve_user() -> Callable[..., tuple[int, int, tuple[int, ...]]]:
    """users.resolve_user, imported only for a container with a user: a start as the image's root never parses
    /etc/passwd, and `imagekit run`'s start-up should not pay for the module."""
    from imagekit import users

    return users.resolve_user


def _check_rootless(options: RunOptions) -> None:
    """What a container of a caller without root cannot have, refused before anything is made: the bridge (no
    slirp4netns or pasta to stand in for it) and resource limits (no cgroup is delegated to the caller)."""
    if options.network == "bridge":
        raise ContainerError("--network bridge needs root (imagekit has no slirp4netns or pasta): use --network host or --network none")
    for flag, value in (("--memory", options.memory), ("--cpus", options.cpus), ("--pids-limit", options.pids_limit)):
        if value:
            raise ContainerError(f"{flag}: cannot set resource limits without root: no cgroup is delegated to this user")


def _publish_specs(config: ImageConfig, options: RunOptions) -> list[ports.PortSpec]:
    """-p and -P's specs; none off the bridge, where docker discards them (its CLI warns: see `discarded_ports`)."""
    if options.network != "bridge":
        return []
    if not options.publish_all:
        return list(options.publish)
    from imagekit.runtime import ports  # here: only -P needs the port modules and their imports

    return [*options.publish, *ports.publish_all(config.exposed_ports)]


def spec_from_json(obj: dict[str, Any]) -> Spec:
    """The sandbox Spec a record keeps (values.asdict's output) as a value again."""
    given = {key: tuple(value) if isinstance(value, list) else value for key, value in obj.items()}
    rootfs = dict(obj["rootfs"])
    given["rootfs"] = Rootfs(**{**rootfs, "lowers": tuple(rootfs["lowers"])})
    given["mounts"] = tuple(Mount(**{**m, "options": tuple(m["options"])}) for m in obj["mounts"])
    given["etc_files"] = tuple(tuple(pair) for pair in obj["etc_files"])
    return Spec(**given)
