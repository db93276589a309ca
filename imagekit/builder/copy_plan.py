"""COPY and ADD, first half: an instruction becomes a CopyPlan, a value saying exactly what to write.

Runs in the builder's process, before the cache lookup: resolves the sources in the build context
(or a `--from` root), applies `.dockerignore`, `--exclude` and `--parents`, downloads ADD URLs into
a staging directory (verifying `--checksum`), tells local archives apart by their content, and
checks what Docker checks (several sources need a destination ending in `/`, `--chmod` is octal,
a source stays inside the context). Every failure is a BuildError naming the Builderfile line.
`CopyPlan.checksum()` is the step's content digest for the cache key: names, modes, owners, link
targets and file contents, never times (BuildKit's contenthash). The writing half is copy_apply.

Imports: stdlib, requests, builderfile, imagekit.errors, digest, imagekit.layers (apply's parse_size,
compression, tarread), imagekit.builder.context. Never the image root: this half only reads.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests

from builderfile.errors import IgnoreFileError
from builderfile.ignore import Matcher
from builderfile.instructions import Add, Copy
from imagekit.builder.context import Node, SourceRoot, clean_source, has_wildcards
from imagekit.digest import CHUNK, Digest
from imagekit.errors import BadDigest, BuildError, LayerError
from imagekit.layers.apply import parse_size
from imagekit.layers.compression import DECOMPRESS_ERRORS, decompressed, sniff
from imagekit.layers.tarread import TarReader, chunks
from imagekit.values import value

#: Default cap on one ADD download; IMAGEKIT_MAX_DOWNLOAD_BYTES (e.g. `2G`) overrides it.
DEFAULT_MAX_DOWNLOAD = 16 << 30
MAX_DOWNLOAD_ENV = "IMAGEKIT_MAX_DOWNLOAD_BYTES"
#: (connect, read) seconds for ADD downloads.
DOWNLOAD_TIMEOUT = (30, 300)
#: What BuildKit names a download whose URL path has no last component.
UNNAMED = "__unnamed__"
HEREDOC_MODE = 0o644
DOWNLOAD_MODE = 0o600
Fail = Callable[[str], BuildError]
_GIT_URL = re.compile(r"(?:git://|git@|ssh://|github\.com/)|(?:^https?://[^#]*\.git(?:#|/?$))")


@value
class Source:
    """One thing a step copies: `nodes[0]` is the source itself (a file or a directory, whose contents
    follow, parents first). `name` is what it is called inside a destination directory. `unpack`: an
    ADD archive extracted into the destination. `parents`: with --parents, the directories kept
    between destination and source, as nodes (paths relative to the pivot) created on the way."""

    name: str
    nodes: tuple[Node, ...]
    unpack: bool = False
    parents: tuple[Node, ...] = ()

    @property
    def is_dir(self) -> bool:
        return self.nodes[0].kind == "dir"


@value
class CopyPlan:
    """What one COPY/ADD writes into the image: plain values, so it pickles into the writing child.

    `dest` is absolute and clean; `into` says the instruction named a directory (`/` at the end, or
    `.`): it is created and sources go inside it. `chmod` replaces every copied mode; `chown` is the
    spec as written (the owner itself is resolved against the image, by the builder).
    """

    keyword: str
    file: str | None
    line: int
    dest: str
    into: bool
    sources: tuple[Source, ...]
    chmod: int | None = None
    chown: str = ""
    parents: bool = False
    words: tuple[str, ...] = ()

    @property
    def owner_spec(self) -> str:
        """--chown as written ("" without it): resolve it against the image with imagekit.users."""
        return self.chown

    def history(self) -> list[str]:
        """BuildKit's history words for the step: `COPY [--parents] [--chown=U] [--chmod=M] SRC... DEST`."""
        return list(self.words)

    def error(self, message: str) -> BuildError:
        return BuildError(message, file=self.file, line=self.line)

    def checksum(self) -> str:
        """`sha256:...` over everything the step reads and how it writes it; equal plans, equal digests."""
        hasher = hashlib.sha256()
        mode = "-" if self.chmod is None else f"{self.chmod:o}"
        hasher.update(f"{self.keyword} dest={self.dest!r} into={self.into} chmod={mode} chown={self.chown!r} parents={self.parents}\n".encode())
        for source in self.sources:
            hasher.update(f"source {source.name!r} unpack={source.unpack}\n".encode())
            for node in source.parents:
                hasher.update(b"parent " + node.identity().encode() + b"\n")
            for node in source.nodes:
                hasher.update(node.identity().encode() + b"\n")
        return f"sha256:{hasher.hexdigest()}"


def parse_chmod(text: str) -> int | None:
    """`--chmod` as BuildKit reads it: an octal string from 0 to 07777; None when absent."""
    if not text:
        return None
    if not re.fullmatch(r"[0-7]+", text) or int(text, 8) > 0o7777:
        raise ValueError(f"invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777")
    return int(text, 8)


def destination(dest: str, workdir: str) -> tuple[str, bool]:
    """(absolute clean destination, whether it names a directory), as dockerfile2llb reads DEST."""
    into = dest in ("", ".") or dest.endswith("/") or dest.endswith("/.")
    return "/" + posixpath.normpath(posixpath.join("/", workdir or "/", dest)).lstrip("/"), into


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_git(source: str) -> bool:
    """Sources BuildKit would fetch with git (git://, git@, ssh://, github.com/..., https://...git)."""
    return bool(_GIT_URL.search(source))


def is_archive(path: str) -> bool:
    """Whether a file is a tar archive (plain, gzip, bzip2, xz or zstd), judged by content as moby's
    isArchivePath: it decompresses and its first tar header is valid."""
    try:
        with open(path, "rb") as handle:
            codec = sniff(handle.read(8))
            handle.seek(0)
            reader = TarReader(chunks(decompressed(handle, codec), 4096), path)  # the first header, not the end
            next(iter(reader), None)
            return reader.offset > 0
    except (LayerError, *DECOMPRESS_ERRORS):
        return False


def plan_copy(
    instruction: Copy | Add,
    context: SourceRoot,
    workdir: str,
    *,
    file: str | None = None,
    stage_root: Path | None = None,
    staging: Path | None = None,
    session: requests.Session | None = None,
) -> CopyPlan:
    """The plan of an (already expanded) COPY or ADD at `instruction.line` of `file`.

    Sources come from `context`, or from `stage_root` (a host directory holding the `--from` stage or
    image root: no .dockerignore, owners kept). ADD URLs are downloaded into `staging` (required for
    them) with `session` (a fresh one if None). Raises BuildError naming the line.
    """
    keyword = "ADD" if isinstance(instruction, Add) else "COPY"

    def fail(message: str) -> BuildError:
        return BuildError(message, file=file, line=instruction.line)

    try:
        chmod = parse_chmod(instruction.chmod)
    except ValueError as err:
        raise fail(str(err)) from None
    try:
        excludes = Matcher(list(instruction.excludes), "--exclude") if instruction.excludes else None
    except IgnoreFileError as err:
        raise fail(f"{keyword} {err.message}") from None
    parents = isinstance(instruction, Copy) and instruction.parents
    dest, into = destination(instruction.dest, workdir)
    into = into or parents
    root = context
    if isinstance(instruction, Copy) and instruction.from_:
        if stage_root is None:
            raise fail(f"COPY --from={instruction.from_}: no root given for the stage or image")
        root = SourceRoot(stage_root, keep_owner=True, label=f"--from={instruction.from_}")
    _check_flags(instruction, fail)

    sources: list[Source] = []
    for spec in instruction.sources:
        if is_git(spec):
            raise fail(f"{keyword} {redacted(spec)}: git sources are not supported yet")
        if is_url(spec):
            if keyword == "COPY":
                raise fail(f"COPY {redacted(spec)}: source can't be a URL for COPY (use ADD)")
            assert isinstance(instruction, Add)
            sources.append(_download(instruction, spec, staging, session, fail))
            continue
        sources.extend(_local(instruction, keyword, spec, root, excludes, parents, fail))
    for content in instruction.contents:
        data = content.data.encode()
        node = Node("", "file", HEREDOC_MODE, mtime_ns=time.time_ns(), size=len(data), digest=hashlib.sha256(data).hexdigest(), data=data)
        sources.append(Source(posixpath.basename(content.path.rstrip("/")) or content.path, (node,)))
    if not sources:
        raise fail(f"{keyword} {' '.join(instruction.sources)}: no source files were specified (nothing matched)")
    if len(sources) > 1 and not into:
        raise fail(f"When using {keyword} with more than one source file, the destination must be a directory and end with a /")
    words = [keyword, *(["--parents"] if parents else []), *([f"--chown={instruction.chown}"] if instruction.chown else []),
             *([f"--chmod={instruction.chmod}"] if instruction.chmod else []), *instruction.sources,
             *(f"<<{content.path}" for content in instruction.contents), instruction.dest]
    return CopyPlan(keyword, file, instruction.line, dest, into, tuple(sources), chmod, instruction.chown, parents, tuple(words))


def _check_flags(instruction: Copy | Add, fail: Fail) -> None:
    """BuildKit's checks on --checksum: ADD only, one source, an HTTP(S) or git one, a valid digest."""
    if not isinstance(instruction, Add) or not instruction.checksum:
        return
    if len(instruction.sources) + len(instruction.contents) != 1:
        raise fail("ADD --checksum can't be specified for multiple sources")
    if not (is_url(instruction.sources[0]) or is_git(instruction.sources[0])):
        raise fail("ADD --checksum requires HTTP(S) or Git sources")
    try:
        Digest.parse(instruction.checksum)
    except BadDigest as err:
        raise fail(f"ADD --checksum={instruction.checksum}: {err}") from None


def _local(instruction: Copy | Add, keyword: str, spec: str, root: SourceRoot, excludes: Matcher | None, parents: bool, fail: Fail) -> list[Source]:
    """The sources one local source argument names (its wildcard matches, or itself)."""
    if not root.available:
        raise fail(f"{keyword} {spec}: there is no build context (the Builderfile came from stdin)")
    pivot, pattern = "", spec
    if parents and "/./" in spec:
        pivot, pattern = spec.split("/./", 1)
    cleaned_pivot, cleaned = clean_source(pivot), clean_source(posixpath.join(pivot, pattern.lstrip("/")))
    if cleaned is None or cleaned_pivot is None:
        raise fail(f"{keyword} {spec}: the path is outside the build context (it climbs out with '..')")
    try:
        matches = root.expand(cleaned)
    except ValueError as err:
        raise fail(f"{keyword} {spec}: bad wildcard pattern ({err})") from None
    wildcard = has_wildcards(cleaned)
    found = []
    for match in matches:
        if excludes is not None and match and excludes.ignored(match):
            continue  # `COPY --exclude=*.txt hom* /d/` drops home.txt itself (BuildKit's docs)
        if parents:
            parent = root.resolve(posixpath.dirname(match))
            real = None if parent is None else posixpath.join(parent, posixpath.basename(match))
            if real is not None and not os.path.lexists(root.host(real)):
                real = None
        else:
            real = root.resolve(match)
        if real is None:
            if wildcard:
                continue
            hint = " (excluded by .dockerignore)" if root.ignored(match) and os.path.lexists(root.host(match)) else ""
            raise fail(f"{keyword} {spec}: not in {root.label}{hint}")
        nodes = tuple(root.tree(real, excludes))
        if not nodes:
            continue
        unpack = False
        if isinstance(instruction, Add) and instruction.unpack is not False and nodes[0].kind == "file":
            unpack = is_archive(nodes[0].host)
        kept: tuple[Node, ...] = ()
        if parents:
            kept = _parent_nodes(root, cleaned_pivot, match)
        found.append(Source(posixpath.basename(match), nodes, unpack, kept))
    return found


def _parent_nodes(root: SourceRoot, pivot: str, match: str) -> tuple[Node, ...]:
    """--parents: the directories from the pivot down to `match`'s parent, as nodes relative to the pivot."""
    inner = match[len(pivot) + 1 :] if pivot else match
    nodes = []
    parts = inner.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        rel = "/".join(parts[:depth])
        real = root.resolve(posixpath.join(pivot, rel) if pivot else rel)
        if real is None:
            continue
        info = os.lstat(root.host(real))
        uid, gid = (info.st_uid, info.st_gid) if root.keep_owner else (0, 0)
        nodes.append(Node(rel, "dir", stat.S_IMODE(info.st_mode), uid, gid, info.st_mtime_ns))
    return tuple(nodes)


def _download(instruction: Add, url: str, staging: Path | None, session: requests.Session | None, fail: Fail) -> Source:
    """ADD URL: the body streamed into `staging`, hashed on the way, checked against --checksum.

    Named from the URL's last path component (UNNAMED without one), mode 0600, mtime from
    Last-Modified or the epoch, as BuildKit's HTTP source; never unpacked unless --unpack=true.
    """
    shown = redacted(url)
    if staging is None:
        raise fail(f"ADD {shown}: no staging directory to download into")
    limit = parse_size(os.environ[MAX_DOWNLOAD_ENV], MAX_DOWNLOAD_ENV) if os.environ.get(MAX_DOWNLOAD_ENV) else DEFAULT_MAX_DOWNLOAD
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or UNNAMED
    staging.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix="add-", dir=staging)
    hasher, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, (session.get if session else requests.get)(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise fail(f"ADD {shown}: the server answered {response.status_code} {response.reason}")
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise fail(f"ADD {shown}: the download is larger than {limit} bytes (raise {MAX_DOWNLOAD_ENV})")
                hasher.update(chunk)
                out.write(chunk)
            modified = response.headers.get("Last-Modified", "")
        digest = f"sha256:{hasher.hexdigest()}"
        if instruction.checksum and instruction.checksum != digest:
            raise fail(f"ADD {shown}: checksum mismatch: --checksum={instruction.checksum} but the download is {digest}")
        mtime_ns = _http_time(modified)
        os.chmod(temp, DOWNLOAD_MODE)
        os.utime(temp, ns=(mtime_ns, mtime_ns))
    except requests.RequestException as err:
        Path(temp).unlink(missing_ok=True)
        raise fail(f"ADD {shown}: download failed ({type(err).__name__}: {err})") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    node = Node("", "file", DOWNLOAD_MODE, mtime_ns=mtime_ns, size=size, digest=hasher.hexdigest(), host=temp)
    unpack = bool(instruction.unpack) and is_archive(temp)
    return Source(name, (node,), unpack)


def redacted(url: str) -> str:
    """`url` without the password of its user-info part, for messages (they never carry credentials)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")))


def _http_time(value: str) -> int:
    """Nanoseconds since the epoch of an HTTP date (Go's http.ParseTime formats); 0 when absent or invalid."""
    if not value:
        return 0
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1_000_000_000
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0
