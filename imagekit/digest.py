"""Content addresses: the Digest value, a streaming hasher, and a reader that verifies at EOF.

Everything imagekit stores or moves is named by its digest, and everything it receives is checked
against the digest it was promised while it streams, so a corrupt or hostile byte is caught before
the content is ever used. See the OCI image-spec, "Digests" (descriptor.md#digests).

Imports: stdlib and imagekit.errors only. hashlib is imported when something streams (Hasher): a byte string
(a manifest, a config: all `imagekit run` hashes) goes through the interpreter's own SHA-2 module, as
random.py's seeding does, because loading hashlib loads OpenSSL, 3 ms of a run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from imagekit.errors import BadDigest, DigestMismatch
from imagekit.values import value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any, BinaryIO

#: Registered algorithms and the exact hex length of their encoded part (image-spec descriptor.md).
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")
CHUNK = 1 << 20
#: Byte strings up to this size are hashed by the interpreter's SHA-2 (of_bytes), longer ones by OpenSSL.
SMALL = 1 << 20


@value(order=True)
class Digest:
    """`algorithm:hex`, validated on construction so an invalid digest cannot exist in memory."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        length = ALGORITHMS.get(self.algorithm)
        if length is None:
            raise BadDigest(f"unsupported digest algorithm {self.algorithm!r} (expected sha256 or sha512)")
        if len(self.hex) != length or not _HEX.fullmatch(self.hex):
            raise BadDigest(
                f"invalid {self.algorithm} digest {self.hex[:80]!r}: expected {length} lowercase hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parses `sha256:<64 hex>`; raises BadDigest naming what is wrong."""
        if not isinstance(text, str) or ":" not in text:
            raise BadDigest(f"invalid digest {str(text)[:80]!r}: expected algorithm:hex")
        algorithm, _, encoded = text.partition(":")
        return cls(algorithm, encoded)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        if len(data) <= SMALL:
            small = _interpreter_sha2().get(algorithm)
            if small is not None:
                return cls(algorithm, small(data).hexdigest())
        hasher = Hasher(algorithm)
        hasher.update(data)
        return hasher.digest()

    @classmethod
    def of_stream(cls, stream: BinaryIO, algorithm: str = "sha256") -> tuple[Digest, int]:
        """Hashes a stream to its end; returns (digest, size). Does not close the stream."""
        hasher = Hasher(algorithm)
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
        return hasher.digest(), hasher.size

    @property
    def encoded(self) -> str:
        """The hex part, as the OCI layout names blob files (`blobs/<algorithm>/<encoded>`)."""
        return self.hex

    @property
    def short(self) -> str:
        """The 12-character image ID docker shows."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@functools.cache
def _interpreter_sha2() -> dict[str, Callable[[bytes], Any]]:
    """The interpreter's SHA-2 constructors (_sha2 since Python 3.12, _sha256/_sha512 before); none where a
    build lacks them, and hashlib does the work."""
    try:
        from _sha2 import sha256, sha512  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]
            from _sha512 import sha512  # type: ignore[import-not-found]
        except ImportError:
            return {}
    return {"sha256": sha256, "sha512": sha512}


class Hasher:
    """Incremental digest plus byte count, for content that is produced or received in chunks."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise BadDigest(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        import hashlib  # OpenSSL's SHA-2, several times faster on megabytes than the interpreter's own

        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())


class VerifyingReader:
    """Wraps a binary stream; hashes what passes through and raises DigestMismatch at EOF.

    The mismatch is raised by the `read` call that reaches the end, so a consumer that reads to the end
    (copying into a temp file, decompressing a layer) can never finish with unverified content.
    Reading more than `expected_size` bytes fails at once: a hostile server cannot stream forever.
    Closing the reader (or leaving its `with` block) closes the wrapped stream.
    """

    def __init__(self, stream: BinaryIO, expected: Digest, expected_size: int | None = None, what: str = "") -> None:
        self._stream = stream
        self._expected = expected
        self._expected_size = expected_size
        self._hasher = Hasher(expected.algorithm)
        self._what = what or f"blob {expected}"
        self.verified = False

    @property
    def bytes_read(self) -> int:
        return self._hasher.size

    def read(self, size: int = -1) -> bytes:
        if self.verified or size == 0:  # read(0) asks for nothing: it is no end of the stream
            return b""
        chunk = self._stream.read(size if size is not None and size >= 0 else -1)
        if chunk:
            self._hasher.update(chunk)
            if self._expected_size is not None and self._hasher.size > self._expected_size:
                raise DigestMismatch(f"{self._what} size", str(self._expected_size), f"more than {self._expected_size} bytes")
            if size is None or size < 0:
                self._finish()
            return chunk
        self._finish()
        return b""

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _finish(self) -> None:
        if self._expected_size is not None and self._hasher.size != self._expected_size:
            raise DigestMismatch(f"{self._what} size", str(self._expected_size), str(self._hasher.size))
        actual = self._hasher.digest()
        if actual != self._expected:
            raise DigestMismatch(self._what, str(self._expected), str(actual))
        self.verified = True
