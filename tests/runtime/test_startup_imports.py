"""What `imagekit run` imports: start-up is most of a short container's time (issue 10: at most 2x `runc run`),
so the run path must import only what it runs. Read from sys.modules at the exit of a real `imagekit run`, a
module set, never a timing: the registry client, the builder, the layer and tar code and the other commands'
modules stay out once the image is in the store and extracted; a missing image still pulls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from imagekit.registry.options import DOCKER_HUB_API_ENV
from tests.builder.conftest import CLOSED_PORT
from tests.registry.registry_server import start_registry
from tests.runtime.conftest import ok, one_line_error, run_cli

#: Never on the run path of an image the store has: the registry (requests and its TLS stack), pull, the
#: builder, the code that reads, writes or compresses layers, the other commands, the network modules a
#: bridge container needs, what only sandbox.call or a --user start needs, and dataclasses (values are
#: imagekit.values: dataclasses compiled each class's methods at start-up, a quarter of a run) with the
#: inspect module it loads, tempfile and shutil with the compression modules they load (a tenth of a run),
#: hashlib (OpenSSL: a run hashes only a manifest and a config, with the interpreter's own SHA-2), threading
#: (a run on the caller's file descriptors starts no thread), and typing (3 ms: the run path's modules import
#: its names under `if TYPE_CHECKING:`, for the type checker only).
NOT_ON_THE_RUN_PATH = (
    "requests", "urllib3", "cryptography", "ssl", "zstandard", "isal", "tarfile", "gzip",
    "imagekit.registry", "imagekit.fetch", "imagekit.builder", "builderfile", "imagekit.importer",
    "imagekit.layers.apply", "imagekit.layers.unpack", "imagekit.layers.write", "imagekit.layers.compression",
    "imagekit.layers.tarread", "imagekit.layers.tarformat", "imagekit.layers.changes", "imagekit.layers.zstdframes",
    "imagekit.snapshots.copy", "imagekit.snapshots.stubs",
    "imagekit.cli.registry", "imagekit.cli.build", "imagekit.cli.store", "imagekit.cli.auth", "imagekit.cli.layers",
    "imagekit.cli.containers", "imagekit.cli.system",
    "imagekit.runtime.network", "imagekit.runtime.ports", "imagekit.runtime.nat", "imagekit.runtime.netns", "imagekit.runtime.netlink",
    "imagekit.users", "pickle", "socket", "logging",
    "click", "imagekit.cli.group", "imagekit.cli.run", "platform", "dataclasses", "inspect",
    "tempfile", "shutil", "random", "lzma", "bz2", "hashlib", "threading", "typing",
)


#: The CLI as `imagekit` runs it, writing the names in sys.modules to the file given first when the process exits
#: (`-X importtime` cannot tell: it misses modules loaded through importlib.import_module, as the commands are).
DRIVER = """
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
from imagekit.cli import main
main(sys.argv[1:])
"""


def imported(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Runs `imagekit --root ROOT ARGS` and returns it with the modules it had imported when it exited."""
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    env[DOCKER_HUB_API_ENV] = CLOSED_PORT  # a missing image must never reach Docker Hub from a test
    listing = root.parent / "modules.txt"
    result = subprocess.run([sys.executable, "-c", DRIVER, str(listing), "--root", str(root), *args],
                            capture_output=True, text=True, timeout=60, env=env)
    return result, set(listing.read_text().split())


def test_run_of_a_stored_image_imports_only_the_runtime(root: Path) -> None:
    first, modules = imported(root, "run", "--rm", "--network", "none", "busybox", "true")
    assert first.returncode == 0, first.stderr
    assert "imagekit.layers.apply" in modules  # the first run extracts the layer; every later one stands on it
    result, modules = imported(root, "run", "--rm", "--network", "none", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert {"imagekit.cli.fastpath", "imagekit.cli.runner", "imagekit.runtime.container", "imagekit.sandbox.run", "imagekit.snapshots.snapshotter"} <= modules
    assert not {m for m in modules if m in NOT_ON_THE_RUN_PATH or m.startswith(tuple(p + "." for p in NOT_ON_THE_RUN_PATH))}


def test_a_bridge_run_without_ports_imports_no_proxy_and_starts_no_tool(root: Path) -> None:
    """The default network (in the session's namespace, IMAGEKIT_HOST_NETNS): once the bridge is made, a run
    without -p needs neither the port proxies nor subprocess (netlink does the links, nftables' table is there)."""
    ok(run_cli(root, "run", "--rm", "busybox", "true"))  # makes the bridge if no test of this session did
    result, modules = imported(root, "run", "--rm", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert "imagekit.runtime.network" in modules
    assert not {"imagekit.runtime.ports", "subprocess"} & modules


def test_run_as_a_user_still_resolves_it(root: Path) -> None:
    """users (and pickle, for sandbox.call) come in when a container has a user, and only then."""
    result, modules = imported(root, "run", "--rm", "-u", "1:2", "busybox", "id")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["uid=1", "gid=2"]
    assert {"imagekit.users", "pickle"} <= modules


def test_run_of_a_missing_image_pulls_and_fails_in_one_line(root: Path) -> None:
    result, modules = imported(root, "run", "--rm", "missing-image:1", "true")
    assert result.returncode == 125
    notice, error = result.stderr.split("\n", 1)
    assert notice == "Unable to find image 'missing-image:1' locally"
    assert one_line_error(subprocess.CompletedProcess(result.args, 125, "", error)).startswith("imagekit: ")
    assert {"imagekit.fetch", "imagekit.registry.client", "requests"} <= modules


def test_run_of_an_image_the_store_lacks_pulls_it_then_runs_it(root: Path, tmp_path: Path) -> None:
    """The registry code, imported only when the image is missing, still does its job: `run` pulls from a
    loopback registry into an empty store, then runs the image."""
    registry = start_registry(tmp_path / "registry")
    try:
        ok(run_cli(root, "push", "-q", "busybox:latest", f"{registry.host}/tools/busybox:1"))
        empty = tmp_path / "empty"
        result, modules = imported(empty, "run", "--rm", f"{registry.host}/tools/busybox:1", "echo", "pulled and ran")
    finally:
        registry.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "pulled and ran\n"
    assert result.stderr.startswith(f"Unable to find image '{registry.host}/tools/busybox:1' locally\n")
    assert {"imagekit.fetch", "imagekit.registry.client"} <= modules


def test_a_warning_on_the_run_path_still_shows_as_one_line(root: Path) -> None:
    """logging is set up when first used (imagekit.log): the store's warning about a short name that matches
    two images (`busybox:latest` as another tool names it, beside imagekit's docker.io/library/busybox:latest)
    still prints in the CLI's format, and the run goes on."""
    index_path = root / "index.json"
    index = json.loads(index_path.read_text())
    withvol = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"].endswith("/withvol:latest"))
    withvol["annotations"]["org.opencontainers.image.ref.name"] = "busybox:latest"
    index_path.write_text(json.dumps(index))
    result, modules = imported(root, "run", "--rm", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("imagekit: W imagekit.store: busybox:latest matches 2 names of different images in the store: "
                             "using 'docker.io/library/busybox:latest' (not 'busybox:latest')\n")
    assert "logging" in modules


def test_a_run_left_to_click_ends_as_the_fast_path_s_does(root: Path) -> None:
    """A run imagekit.cli.fastpath declines (--tls-verify=VALUE: a type it does not convert) goes through click and
    ends alike: the container's status and streams, and imagekit's own failure as the same one line and 125."""
    for command in (("busybox", "sh", "-c", "echo out; echo err >&2; exit 3"), ("-u", "nosuchuser", "busybox", "true")):
        fast, fast_modules = imported(root, "run", "--rm", "--network", "none", *command)
        slow, slow_modules = imported(root, "--tls-verify=true", "run", "--rm", "--network", "none", *command)
        assert "click" not in fast_modules and "click" in slow_modules
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert (fast.returncode, fast.stdout) == (125, "")
    assert one_line_error(fast).startswith("imagekit: ")
