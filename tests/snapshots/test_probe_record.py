"""The overlay probe's answer is kept in the store (layers/overlay-probe.json) for this kernel and euid, so
short-lived processes (`imagekit run`) do not fork and mount a test overlay each time."""

from __future__ import annotations

import json
import os

from imagekit.snapshots import Snapshots
from imagekit.snapshots import snapshotter
from imagekit.store import Store


def test_probe_answer_is_recorded_and_reused(store: Store) -> None:
    assert Snapshots(store).prepare("first", ()).is_overlay is False  # no lowers: no probe needed
    lower = store.root / "lower"
    lower.mkdir()
    snapshotter._probe.cache_clear()
    assert Snapshots(store).prepare("second", (lower,)).is_overlay
    record = store.root / "layers" / "overlay-probe.json"
    assert json.loads(record.read_text()) == {"kernel": os.uname().release, "euid": os.geteuid(), "usable": True}
    record.write_text(json.dumps({"kernel": os.uname().release, "euid": os.geteuid(), "usable": False}))
    snapshotter._probe.cache_clear()
    assert not Snapshots(store).prepare("third", (lower,)).is_overlay  # the record decided: the copy fallback
    record.write_text(json.dumps({"kernel": "another", "euid": os.geteuid(), "usable": False}))
    snapshotter._probe.cache_clear()
    assert Snapshots(store).prepare("fourth", (lower,)).is_overlay  # another kernel's answer: probed again
    assert json.loads(record.read_text())["kernel"] == os.uname().release
