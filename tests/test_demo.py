"""`make demo` runs examples/demo.sh with the venv's imagekit first on PATH: it must succeed and show
the imported image, and clean up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_builds_the_example_and_runs_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out, err = result.stdout, result.stderr
    listing = out[out.index("== imagekit images") : out.index("== imagekit inspect")].splitlines()
    assert listing[1].split()[:2] == ["REPOSITORY", "TAG"]
    assert sorted(line.split()[0] for line in listing[2:]) == ["demo/busybox", "demo/hello"]
    assert "STEP 5/7: RUN <<EOF" in err and "--> CACHED" in err  # built, then rebuilt from the cache
    assert '"demo/hello:latest"' in out
    assert out.splitlines()[-3:] == [
        "Hello from a Builderfile!",
        "built by imagekit in a sandbox as uid 0, hostname imagekit",
        "greeting is 26 bytes",
    ]  # `imagekit run` ran the image's CMD (tests run as root)
    assert "== imagekit run --rm --network none demo/hello:latest" in out  # the host's network is left alone
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
