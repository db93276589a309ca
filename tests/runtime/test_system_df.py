"""`imagekit system df`: its sizes checked against the store's own files (blob lengths, du of directories)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from imagekit.runtime.stats import human_size
from tests.runtime.conftest import Run, ok


def _row(output: str, kind: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(kind + " "))
    return [cell.strip() for cell in line[len(kind):].split("   ") if cell.strip()]


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-s", "--block-size=1", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def _blob_bytes(root: Path) -> int:
    """Sum of the lengths of the blobs index.json's images reach (manifests, configs, layers), each once."""
    def blob(digest: str) -> Path:
        return root / "blobs" / "sha256" / digest.split(":")[1]

    sizes: dict[str, int] = {}
    for manifest in json.loads((root / "index.json").read_text())["manifests"]:
        sizes[manifest["digest"]] = manifest["size"]
        body = json.loads(blob(manifest["digest"]).read_text())
        for descriptor in (body["config"], *body["layers"]):
            sizes[descriptor["digest"]] = blob(descriptor["digest"]).stat().st_size
    return sum(sizes.values())


def test_system_df_counts_images_containers_and_volumes(ik: Run, root: Path) -> None:
    ok(ik("volume", "create", "kept"))
    ok(ik("run", "--name", "writer", "-v", "used:/vol", "busybox", "sh", "-c",
          "head -c 3000000 /dev/urandom > /big; head -c 2000000 /dev/urandom > /vol/data"))
    ok(ik("run", "-d", "--name", "up", "busybox", "sleep", "30"))
    output = ok(ik("system", "df"))
    assert output.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    images = _row(output, "Images")
    assert images[:3] == ["2", "1", human_size(_blob_bytes(root))]
    containers = _row(output, "Containers")
    assert containers[:2] == ["2", "1"]
    uppers = [Path(c["GraphDriver"]["Data"]["UpperDir"]) for c in json.loads(ok(ik("container", "inspect", "writer", "up")))]
    assert containers[2] == human_size(sum(_du(p) for p in uppers)) and _du(uppers[0]) >= 3_000_000
    assert containers[3].startswith(human_size(_du(uppers[0])) + " (")
    volumes = _row(output, "Local Volumes")
    assert volumes[:3] == ["2", "1", human_size(_du(root / "volumes" / "used") + _du(root / "volumes" / "kept"))]
    assert volumes[3].startswith(human_size(_du(root / "volumes" / "kept")))
    assert _row(output, "Build Cache")[:2] == ["0", "0"]
    verbose = ok(ik("system", "df", "-v"))
    assert "Containers space usage:" in verbose and any(line.startswith("writer ") for line in verbose.splitlines())
    assert any(line.split() == ["kept", human_size(_du(root / "volumes" / "kept")), "no"] for line in verbose.splitlines())
    ok(ik("rm", "-f", "up"))
    assert _row(ok(ik("system", "df")), "Images")[:2] == ["2", "1"]  # writer still uses busybox
