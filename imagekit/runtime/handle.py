"""ContainerHandle: a started container as Python sees it (what `imagekit.run()` returns).

A thin view over the Runtime and the container's record: every call reads the record afresh, so a
handle stays right whoever else stops or removes the container (the CLI, another process).

Imports: stdlib, imagekit.errors, runtime.
"""

from __future__ import annotations

from imagekit.errors import ContainerError
from imagekit.runtime.container import Runtime
from imagekit.runtime.state import Container


class ContainerHandle:
    """One container: `id`, `name`, and wait / logs / stop / kill / remove / reload."""

    def __init__(self, runtime: Runtime, container: Container) -> None:
        self.runtime = runtime
        self.id = container.id
        self.name = container.name

    def reload(self) -> Container:
        """The container's current record (state, exit_code, oom_killed, pid...)."""
        return self.runtime.containers.load(self.id)

    @property
    def status(self) -> str:
        return self.reload().state

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the container to exit and returns its exit status; ContainerError on timeout."""
        final = self.runtime.wait(self.reload(), timeout)
        if final is None:
            raise ContainerError(f"container {self.name} still runs after {timeout} s")
        return final.exit_code

    def logs(self) -> bytes:
        """Everything the container wrote to stdout and stderr so far."""
        try:
            return self.runtime.containers.log_path(self.id).read_bytes()
        except FileNotFoundError:
            return b""

    def stop(self, timeout: float = 10) -> int:
        """`docker stop`: the stop signal, SIGKILL after `timeout` seconds; returns the exit status."""
        return self.runtime.stop(self.reload(), timeout).exit_code

    def kill(self, signal_number: int = 9) -> None:
        self.runtime.kill(self.reload(), signal_number)

    def remove(self, force: bool = False) -> None:
        """Deletes the container (and its anonymous volumes); `force` kills a running one first."""
        self.runtime.remove(self.reload(), force=force, volumes=True)

    def __repr__(self) -> str:
        return f"<ContainerHandle {self.id[:12]} {self.name}>"
