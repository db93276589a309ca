"""What the default bridge network costs: `imagekit run --rm busybox true` on the bridge (the default) against
`--network none`, interleaved, median of 20, with the bridge's overhead in ms, both against `runc run` (issue
10's target: at most 2x runc), and the programs each run executes (strace's execve count: 3 with
`--network none`, nsenter, imagekit and the container's `true`).

The bench never touches the machine's network: it pins a network namespace of its own (`unshare --net`, lo up)
and runs every imagekit command inside it (`nsenter --net`), so the bridge, its NAT rules and the leases
(/run/imagekit/networks/netns-<inode of that namespace>) are that namespace's, and imagekit takes its production
path (no IMAGEKIT_HOST_NETNS). A third contender names the namespace through IMAGEKIT_HOST_NETNS instead, the
tests' path, where imagekit stays outside and works in the namespace from threads that joined it. The pin and
its state are removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

from bench._report import runc_true, time_interleaved
from bench.run import import_busybox
from imagekit.runtime.container import HOST_NETNS_ENV
from imagekit.runtime.network import state_dir

ROUNDS = 20


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-bridge."))
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGEKIT_ROOT", "PYTHONDONTWRITEBYTECODE", HOST_NETNS_ENV)}
    pin = work / "hostns"
    pin.touch()
    subprocess.run(["unshare", f"--net={pin}", "ip", "link", "set", "lo", "up"], check=True)
    state = state_dir(str(pin))
    try:
        store = work / "store"
        imagekit = ["nsenter", f"--net={pin}", *import_busybox(work, store, env)]
        subprocess.run(["umoci", "unpack", "--image", f"{store}:docker.io/library/busybox:latest", str(work / "bundle")],
                       check=True, capture_output=True)
        commands = {
            "bridge": [*imagekit, "run", "--rm", "busybox", "true"],
            "none": [*imagekit, "run", "--rm", "--network", "none", "busybox", "true"],
            "bridge via IMAGEKIT_HOST_NETNS": imagekit[2:] + ["run", "--rm", "busybox", "true"],
        }
        envs = {name: {**env, HOST_NETNS_ENV: str(pin)} if HOST_NETNS_ENV in name else env for name in commands}
        for name, argv in commands.items():  # the layer extracted, the bridge made, caches warm
            subprocess.run(argv, check=True, env=envs[name])
        contenders = {name: (lambda argv=argv, name=name: subprocess.run(argv, check=True, env=envs[name])) for name, argv in commands.items()}
        contenders["runc"] = runc_true(work / "bundle")
        times = time_interleaved(contenders, rounds=ROUNDS)
        runc = times["runc"]
        for name in commands:
            print(f"bench bridge: {name:32} {times[name] * 1000:7.1f} ms  ({times[name] / runc:.2f}x runc run, {runc * 1000:.1f} ms)"
                  f"  {executions(commands[name], envs[name], work)} programs run", flush=True)
        print(f"bench bridge: the bridge costs {(times['bridge'] - times['none']) * 1000:+.1f} ms over --network none "
              f"({(times['bridge via IMAGEKIT_HOST_NETNS'] - times['none']) * 1000:+.1f} ms through IMAGEKIT_HOST_NETNS)"
              f"  (median of {ROUNDS}, interleaved)", flush=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        for parent in (state.parent, state.parent.parent):
            with suppress(OSError):  # other namespaces' state is still there
                parent.rmdir()
        subprocess.run(["umount", str(pin)], check=False)
        shutil.rmtree(work, ignore_errors=True)


def executions(argv: list[str], env: dict[str, str], work: Path) -> str:
    """How many programs one run executes, itself and nsenter included (successful execve calls, every process)."""
    if not shutil.which("strace"):
        return "strace is not installed: no count of the"
    trace = work / "execve.trace"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), *argv], check=True, env=env)
    return str(sum(1 for line in trace.read_text().splitlines() if "execve(" in line and line.rstrip().endswith("= 0")))


if __name__ == "__main__":
    main()
