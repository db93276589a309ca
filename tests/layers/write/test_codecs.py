"""The codec settings keep layers reproducible across machines: zstd's bytes do not depend on the worker count."""

from __future__ import annotations

import random

import pytest

from imagekit.layers import compression


def compress(data: bytes, codec: str) -> bytes:
    compressor = compression.compressor(codec)
    return b"".join(compressor.compress(data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)) + compressor.flush()


def test_zstd_output_is_the_same_on_machines_with_more_or_fewer_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    words = [bytes(rng.choices(b"abcdefghij", k=rng.randint(2, 8))) for _ in range(500)]
    data = b" ".join(rng.choices(words, k=2_000_000))  # ~10 MB: several zstd jobs
    assert len(data) > 3 * compression.ZSTD_JOB_SIZE
    outputs = set()
    for workers in (1, 2, 4):
        monkeypatch.setattr(compression, "ZSTD_THREADS", workers)
        outputs.add(compress(data, compression.ZSTD))
    assert len(outputs) == 1
