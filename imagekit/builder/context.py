"""Where COPY and ADD read from: the build context (or a stage's root), its paths, and what they hold.

Owns source resolution and content hashing, as BuildKit does for a local context:
- `.dockerignore` (`<Builderfile>.dockerignore` beside the Builderfile wins): ignored paths are not
  in the context at all; an ignored directory is still there when a `!` exception takes back
  something inside it (as the context BuildKit transfers would hold it, as a parent).
- source paths are relative to the context root (a leading `/` too); `..` out of it is refused;
  symlinks on the way are resolved inside the root (as containerd's fs.RootPath: `/` is the root).
- wildcards are Go's filepath.Match (`*`, `?`, `[...]`, `\\` escapes), matched from the first
  component that holds one, as fsutil's ResolveWildcards: a matched directory is not entered.
- `tree()` lists what a source copies (directory, file, symlink nodes with their metadata and
  content digests, from imagekit.builder.statcache); `Node` values travel in the copy plan to the
  process that writes the layer.

Imports: stdlib, builderfile.ignore, imagekit.errors, imagekit.layers.changes (read_xattrs),
imagekit.builder.statcache. Never the copy itself (imagekit.builder.copy_*).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from builderfile.errors import IgnoreFileError
from builderfile.ignore import Matcher, filepath_match_regex, ignore_file, load_matcher
from imagekit.builder.statcache import Hashing, StatCache
from imagekit.errors import BuildError
from imagekit.layers.changes import read_xattrs
from imagekit.values import value

_MAX_SYMLINKS = 255  # containerd's fs.RootPath limit
#: Extended attributes never copied: the host's SELinux label, and the owner record a rootless unpack writes.
SKIPPED_XATTRS = frozenset({"security.selinux", "user.rootlesscontainers"})


@value
class Node:
    """One file-system object a source copies: `path` is relative to the source ("" is the source itself).

    `kind` is "dir", "file" or "symlink"; `mode` the permission bits (07777); files carry `size`,
    the sha256 `digest` (hex) of their content and either `host` (an absolute path to read) or
    inline `data`; symlinks carry `link`. Files and directories carry their extended attributes
    (file capabilities among them), but for the host's SELinux label and imagekit's rootless owner
    record. `mtime_ns` is copied but never part of a checksum.
    """

    path: str
    kind: str
    mode: int
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    size: int = 0
    digest: str = ""
    link: str = ""
    host: str = ""
    data: bytes = b""
    xattrs: tuple[tuple[str, bytes], ...] = ()

    def identity(self) -> str:
        """What a cache key sees of this node (BuildKit's contenthash: xattrs too, no times)."""
        extra = f" {self.xattrs!r}" if self.xattrs else ""
        return f"{self.kind} {self.path!r} {self.mode:o} {self.uid}:{self.gid} {self.size} {self.digest} {self.link!r}{extra}"


def has_wildcards(name: str) -> bool:
    """fsutil's containsWildcards: an unescaped `*`, `?` or `[`."""
    i = 0
    while i < len(name):
        if name[i] == "\\":
            i += 2
            continue
        if name[i] in "*?[":
            return True
        i += 1
    return False


def clean_source(source: str) -> str | None:
    """A source as a clean path relative to the root ("" for the root itself), None when `..` leaves it."""
    cleaned = posixpath.normpath(source.lstrip("/") or ".")
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return "" if cleaned == "." else cleaned


def copied_xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    """The extended attributes of `path` (not followed) that a copy carries: all but SKIPPED_XATTRS."""
    return tuple((name, value) for name, value in read_xattrs(path) if name not in SKIPPED_XATTRS)


class SourceRoot:
    """A host directory COPY reads from: the build context, or the root of a stage or image (--from).

    `ignore` hides paths (the context's .dockerignore); `keep_owner` False makes every node 0:0, as
    BuildKit's context transfer resets owners; a stage keeps its owners. `cache` keeps digests.
    """

    def __init__(self, directory: Path, *, ignore: Matcher | None = None, keep_owner: bool = True, cache: StatCache | None = None, label: str = "the source") -> None:
        self.directory = directory.resolve()
        self._prefix = str(self.directory).rstrip("/") + "/"
        self.label = label  # how messages name it: "the build context", "--from=builder"
        self.available = True  # False: `imagekit build -`, no context to read
        self.matcher = ignore or Matcher([])
        self.keep_owner = keep_owner
        self.cache = cache or StatCache(None)
        self.hashed_files = 0  # files whose content was read for a digest (the rest came from the cache)
        self.hashed_bytes = 0
        self._exceptions = any(p.exclusion for p in self.matcher.patterns)
        self._present: dict[str, bool] = {}

    def host(self, rel: str) -> str:
        """The host path of `rel` (clean, relative, already resolved)."""
        return self._prefix + rel if rel else self._prefix[:-1]

    # --- what is in the root ------------------------------------------------------------------------
    def present(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` is in this root as BuildKit would see it: not ignored, or a directory holding
        something a `!` exception takes back."""
        if not rel or not self.matcher.ignored(rel):
            return True
        if not (is_dir and self._exceptions):
            return False
        known = self._present.get(rel)
        if known is None:
            known = any(True for _ in self._walk(rel))
            self._present[rel] = known
        return known

    def ignored(self, rel: str) -> bool:
        """Whether `rel` exists on disk but .dockerignore keeps it out of the context."""
        return bool(rel) and self.matcher.ignored(rel)

    def resolve(self, rel: str) -> str | None:
        """`rel` with every symlink resolved inside the root (fs.RootPath), or None if it is not there."""
        todo = [p for p in reversed(rel.split("/")) if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop()
            if part == "..":
                if done:
                    done.pop()
                continue
            path = "/".join([*done, part])
            try:
                info = os.lstat(self.host(path))
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    return None
                target = os.readlink(self.host(path))
                if target.startswith("/"):
                    done = []
                todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                continue
            if not self.present(path, stat.S_ISDIR(info.st_mode)):
                return None
            if todo and not stat.S_ISDIR(info.st_mode):
                return None
            done.append(part)
        return "/".join(done)

    def expand(self, pattern: str) -> list[str]:
        """The paths (relative, unresolved) a source names: itself, or its wildcard matches in walk order.

        A path without wildcards is returned as is (it may not exist: the caller reports that).
        ValueError for a malformed pattern.
        """
        parts = pattern.split("/") if pattern else []
        first = next((i for i, p in enumerate(parts) if has_wildcards(p)), None)
        if first is None:
            return [pattern]
        base_rel = "/".join(parts[:first])
        regex = filepath_match_regex("/".join(parts[first:]))
        base = self.resolve(base_rel)
        if base is None:
            return []
        return self._match(base, regex, base_rel)

    def _match(self, base: str, regex: re.Pattern[str], shown: str) -> list[str]:
        """filepath.Walk of `base` (sorted, symlinks not entered, matched directories not entered),
        as `shown`-prefixed paths of what matches `regex`. An explicit stack: depth is unbounded."""
        found: list[str] = []
        stack = self._children(base)
        while stack:
            full, info = stack.pop()
            child = full[len(base) + 1 :] if base else full
            is_dir = stat.S_ISDIR(info.st_mode)
            if not self.present(full, is_dir):
                continue
            if regex.match(child):
                found.append(posixpath.join(shown, child) if shown else child)
            elif is_dir:
                stack.extend(self._children(full))
        return found

    def _children(self, top: str) -> list[tuple[str, os.stat_result]]:
        """(path, lstat) of the entries of the directory `top`, in reverse name order (for a stack)."""
        try:
            with os.scandir(self.host(top)) as listing:
                names = sorted((entry.name for entry in listing), reverse=True)
        except (NotADirectoryError, FileNotFoundError):
            return []
        prefix = top + "/" if top else ""
        return [(prefix + name, os.lstat(self._prefix + prefix + name)) for name in names]

    # --- what a source copies -------------------------------------------------------------------------
    def _walk(self, top: str) -> Iterator[tuple[str, os.stat_result]]:
        """(path, lstat) of everything below the directory `top` that is in the root, parents first,
        sorted; an ignored directory is entered only when a `!` exception may take something back,
        and listed only when something inside it is. An explicit stack: depth is unbounded."""
        stack: list[tuple[str, os.stat_result, tuple[tuple[str, os.stat_result], ...]]] = [
            (path, info, ()) for path, info in self._children(top)
        ]
        listed: set[str] = set()  # ignored directories already yielded for something inside them
        while stack:
            rel, info, hidden = stack.pop()
            is_dir = stat.S_ISDIR(info.st_mode)
            if not self.matcher.ignored(rel):
                for parent in hidden:
                    if parent[0] not in listed:
                        listed.add(parent[0])
                        yield parent
                yield rel, info
                if is_dir:
                    stack.extend((path, child, ()) for path, child in self._children(rel))
            elif is_dir and self._exceptions:
                stack.extend((path, child, (*hidden, (rel, info))) for path, child in self._children(rel))

    def tree(self, rel: str, excludes: Matcher | None = None) -> list[Node]:
        """The nodes a (resolved, present) source copies: itself at path "", then, for a directory,
        everything below it that neither .dockerignore nor `excludes` (COPY --exclude, matched on
        paths relative to the source) drops. Only directories, regular files and symlinks are copied
        (as BuildKit). File digests come from the stat cache, or are computed by HASH_THREADS
        threads while the walk goes on, small files in batches (a task per file costs more than
        hashing it)."""
        top = os.lstat(self.host(rel))
        entries: dict[str, os.stat_result] = {"": top}
        with Hashing(self.cache, self.host) as hashing:
            hashing.want(rel, top)
            if stat.S_ISDIR(top.st_mode):
                prefix = len(rel) + 1 if rel else 0
                below: dict[str, os.stat_result] = {}
                for path, info in self._walk(rel):
                    inner = path[prefix:]
                    if excludes is None or not excludes.ignored(inner):
                        below[inner] = info
                        hashing.want(path, info)
                    elif stat.S_ISDIR(info.st_mode):
                        below[inner] = info  # kept only if a `!` exception keeps something inside
                if excludes is not None:
                    below = _with_parents(below, excludes)
                entries.update(below)
            hashing.flush()
            nodes = []
            for inner, info in entries.items():
                path = f"{rel}/{inner}" if rel and inner else rel or inner
                node = self._node(inner, path, info, hashing.digest(path, info))
                if node is not None:
                    nodes.append(node)
        self.hashed_files += hashing.hashed_files
        self.hashed_bytes += hashing.hashed_bytes
        return nodes

    def _node(self, inner: str, path: str, info: os.stat_result, digest: str) -> Node | None:
        uid, gid = (info.st_uid, info.st_gid) if self.keep_owner else (0, 0)
        mode = stat.S_IMODE(info.st_mode)
        common = {"path": inner, "mode": mode, "uid": uid, "gid": gid, "mtime_ns": info.st_mtime_ns}
        if stat.S_ISDIR(info.st_mode):
            return Node(kind="dir", xattrs=copied_xattrs(self.host(path)), **common)
        if stat.S_ISREG(info.st_mode):
            host = self.host(path)
            return Node(kind="file", size=info.st_size, digest=digest, host=host, xattrs=copied_xattrs(host), **common)
        if stat.S_ISLNK(info.st_mode):
            return Node(kind="symlink", link=os.readlink(self.host(path)), **common)
        return None  # sockets, fifos, devices: not part of a build context


def _with_parents(below: dict[str, os.stat_result], excludes: Matcher) -> dict[str, os.stat_result]:
    """`below` without the directories --exclude dropped, except those holding something kept."""
    kept = {inner for inner in below if not excludes.ignored(inner)}
    for inner in list(kept):
        while "/" in inner:
            inner = inner.rsplit("/", 1)[0]
            if inner in kept:
                break  # its own parents are (or will be) walked from it
            kept.add(inner)
    return {inner: info for inner, info in below.items() if inner in kept}


class BuildContext(SourceRoot):
    """The build context directory with its .dockerignore and stat cache; `directory` None means
    `imagekit build -` (a Builderfile on stdin and no context: any COPY from it is an error).

    `cache_dir` (ROOT/cache/context) holds one stat cache file per context directory; call `save()`
    after planning a build's steps so the next build reuses the digests.
    """

    def __init__(self, directory: Path | None, builderfile: Path | None, cache_dir: Path | None = None) -> None:
        if directory is None:
            super().__init__(Path("/nonexistent-build-context"), keep_owner=False, label="the build context")
            self.available = False
            return
        directory = directory.resolve()
        if not directory.is_dir():
            raise BuildError(f"build context {directory}: not a directory")
        try:
            matcher = load_matcher(directory, builderfile)
        except IgnoreFileError as err:
            source = ignore_file(directory, builderfile) or directory / ".dockerignore"
            raise BuildError(err.message, file=str(source), line=max(err.line, 1)) from None
        cache = None
        if cache_dir is not None:
            cache = StatCache(cache_dir / (hashlib.sha256(os.fsencode(directory)).hexdigest()[:32] + ".json"))
        super().__init__(directory, ignore=matcher, keep_owner=False, cache=cache, label="the build context")

    def path_of(self, source: str) -> Path:
        """The host path of a context path (a RUN --mount=type=bind source): symlinks resolved inside
        the context; BuildError when it is outside, ignored or missing."""
        cleaned = clean_source(source)
        if not self.available:
            raise BuildError(f"{source}: there is no build context (the Builderfile came from stdin)")
        if cleaned is None:
            raise BuildError(f"{source}: the path is outside the build context (it climbs out with '..')")
        real = self.resolve(cleaned)
        if real is None:
            raise BuildError(f"{source}: not in the build context")
        return Path(self.host(real))

    def save(self) -> None:
        """Keeps the digests computed so far for the next build (atomic; a no-op without cache_dir)."""
        self.cache.save()

