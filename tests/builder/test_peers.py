"""Built images are read by the peers: `oci-image-tool validate`, `skopeo inspect oci:`, and `runc run`
of a bundle `umoci unpack` made from the built image prints what the image's CMD prints."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from tests.builder.conftest import build, ok

TEXT = """\
FROM busybox
WORKDIR /app
RUN echo "built by imagekit" > message
USER app
CMD ["cat", "/app/message"]
"""


def test_peers_read_and_run_the_built_image(root: Path, tmp_path: Path) -> None:
    image_id = ok(build(root, tmp_path / "ctx", "-t", "peer:1", text=TEXT)).strip()
    subprocess.run(["oci-image-tool", "validate", "--type", "image", str(root)], check=True, capture_output=True, timeout=120)
    inspected = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{root}:docker.io/library/peer:1"],
                                          check=True, capture_output=True, text=True, timeout=120).stdout)
    assert inspected["Layers"] and len(inspected["Layers"]) == 2
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{root}:docker.io/library/peer:1"],
                                       check=True, capture_output=True, text=True, timeout=120).stdout)
    assert config["config"]["Cmd"] == ["cat", "/app/message"]
    raw = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{root}:docker.io/library/peer:1"],
                                    check=True, capture_output=True, text=True, timeout=120).stdout)
    assert raw["config"]["digest"] == image_id  # the ID imagekit printed is the config skopeo reads
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{root}:docker.io/library/peer:1", str(bundle)], check=True,
                   capture_output=True, timeout=120)
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["args"] == ["cat", "/app/message"] and spec["process"]["cwd"] == "/app"
    assert spec["process"]["user"]["uid"] == 1000
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    name = f"imagekit-peer-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(["runc", "run", "-b", str(bundle), name], capture_output=True, text=True, timeout=120)
    subprocess.run(["runc", "delete", "-f", name], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "built by imagekit\n"

