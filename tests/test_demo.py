"""`make demo` runs examples/demo.sh with the venv's imagekit first on PATH: it must succeed and show
the imported image, and clean up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_imports_inspects_unpacks_and_runs_busybox(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    listing = out[out.index("== imagekit images") : out.index("== imagekit inspect")].splitlines()
    assert listing[1].split()[:2] == ["REPOSITORY", "TAG"]
    assert [line.split()[:2] for line in listing[2:]] == [["demo/busybox", "latest"], ["demo/busybox", "1.0"]]
    assert '"echo hello from busybox"' in out and '"demo/busybox:latest"' in out
    assert "busybox\ncat\necho\nls\nsh\n" in out[out.index("== imagekit unpack") :]  # ls of the unpacked bin/
    assert out.splitlines()[-1] == "hello from busybox"  # the CMD ran in the unpacked rootfs (tests run as root)
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
