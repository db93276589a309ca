"""Whole images onto disk: every layer in order, with nothing ever left half-applied without a trace.

Two entries, for the two situations the OCI changeset rules meet:
- `unpack(image, dest)` makes a new root filesystem (as `umoci raw unpack` does): the layers are
  applied to a hidden temp directory beside DEST, which is renamed to DEST only when all of them
  applied and every blob matched its digest. On any error the temp directory is removed, so DEST is
  absent (or the empty directory it was) exactly as before.
- `apply_layers(image, root)` applies onto an existing root (building on a base). That cannot be
  undone cheaply, so a marker file `ROOT.imagekit-partial` is written beside ROOT first and removed
  only on success; a failure (or a kill) leaves it, and `check_usable` (which apply_layers calls
  before it starts) refuses such a root from then on.
One Budget spans all layers of the image: the caps are on what the whole image unpacks to.
Every layer is checked twice as it streams: the blob against its descriptor's digest, and the
uncompressed tar against the config's diff_id (as containerd checks on extraction), so a config
that lies about its layers' content is refused.

Imports: stdlib, imagekit.errors, digest, image, oci, log, imagekit.layers (apply, rootfs).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from imagekit.digest import CHUNK, Digest
from imagekit.errors import ImagekitError, LayerError
from imagekit.image import Image
from imagekit.layers.apply import ApplyReport, Budget, Limits, Whiteouts, apply_layer
from imagekit.layers.rootfs import Root, remove_path
from imagekit.log import logger
from imagekit.oci import Descriptor

log = logger(__name__)

PARTIAL_SUFFIX = ".imagekit-partial"


def unpack(image: Image, dest: str | os.PathLike[str], *, layers: Sequence[Descriptor] | None = None, limits: Limits | None = None) -> tuple[ApplyReport, ...]:
    """Extracts the image's root filesystem (or just `layers` of it) into the new directory `dest`.

    `dest` must not exist or be an empty directory; its parent is created. Atomic: `dest` appears
    complete or not at all. Limits default to Limits.from_env(). Raises LayerError, DigestMismatch.
    """
    target = Path(dest)
    pairs = _chosen(image, layers)
    try:
        info = target.lstat()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise LayerError(f"cannot unpack into {target}: {err.strerror}") from err
    else:
        if not stat.S_ISDIR(info.st_mode) or any(target.iterdir()):
            raise LayerError(f"cannot unpack into {target}: it exists and is not an empty directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = tempfile.mkdtemp(prefix=f".{target.name}.unpacking-", dir=target.parent)
    except OSError as err:
        raise LayerError(f"cannot unpack into {target}: {err.strerror}") from err
    try:
        os.chmod(temp, 0o755)  # a root filesystem's usual mode, unless the layers say otherwise
        with Root(temp) as root:
            reports = _apply_all(image, root, pairs, limits)
        os.rename(temp, target)  # over an empty directory too, atomically
    except BaseException as err:
        _discard(Path(temp))
        if isinstance(err, OSError):
            raise LayerError(f"cannot unpack into {target}: {err.strerror or err}") from err
        raise
    return reports


def apply_layers(image: Image, root: str | os.PathLike[str], *, layers: Sequence[Descriptor] | None = None, limits: Limits | None = None) -> tuple[ApplyReport, ...]:
    """Applies the image's layers (or `layers`) onto the existing directory `root`, in order.

    On failure `root` keeps the marker `ROOT.imagekit-partial` and is unusable (check_usable) until
    the caller removes both; the LayerError says so.
    """
    path = Path(root)
    check_usable(path)
    pairs = _chosen(image, layers)
    marker = partial_marker(path)
    try:
        with open(marker, "w") as out:
            out.write(f"imagekit did not finish applying layers onto {path}: do not use it\n")
            out.flush()
            os.fsync(out.fileno())
        with Root(path) as opened:
            reports = _apply_all(image, opened, pairs, limits)
    except (ImagekitError, OSError) as err:
        reason = str(err) if isinstance(err, ImagekitError) else f"cannot apply layers onto {path}: {err.strerror or err}"
        if marker.exists():
            reason += f" ({path} is left unusable, marked by {marker.name})"
        raise LayerError(reason) from err
    marker.unlink()
    return reports


def partial_marker(root: Path) -> Path:
    """The file beside `root` that says an application onto it did not finish."""
    return root.with_name(root.name + PARTIAL_SUFFIX)


def check_usable(root: str | os.PathLike[str]) -> None:
    """LayerError if an application of layers onto `root` did not finish (its marker is there)."""
    marker = partial_marker(Path(root))
    if marker.exists():
        raise LayerError(f"{root} is unusable: applying layers onto it did not finish (remove it and {marker.name}, then unpack again)")


def _chosen(image: Image, layers: Sequence[Descriptor] | None) -> tuple[tuple[Descriptor, Digest], ...]:
    """The (descriptor, diff_id) pairs to apply: every layer, or those of `layers`."""
    pairs = image.layer_pairs()
    if layers is None:
        return pairs
    by_blob = {descriptor.digest: diff_id for descriptor, diff_id in pairs}
    if any(descriptor.digest not in by_blob for descriptor in layers):
        raise LayerError(f"cannot apply layers that image {image.digest.short} does not list")
    return tuple((descriptor, by_blob[descriptor.digest]) for descriptor in layers)


def _apply_all(image: Image, root: Root, pairs: tuple[tuple[Descriptor, Digest], ...], limits: Limits | None) -> tuple[ApplyReport, ...]:
    budget = Budget(limits if limits is not None else Limits.from_env())
    return tuple(
        apply_blob(image, descriptor, diff_id, root, budget=budget, what=f"layer {number}/{len(pairs)} ({descriptor.digest.short})")
        for number, (descriptor, diff_id) in enumerate(pairs, 1)
    )


def apply_blob(
    image: Image, descriptor: Descriptor, diff_id: Digest, root: Root, *, budget: Budget, what: str, whiteouts: Whiteouts = "delete"
) -> ApplyReport:
    """Applies one layer blob of `image` onto `root` (apply_layer), checking both its digest and its diff_id."""
    with image.open_verified(descriptor) as blob:
        report = apply_layer(blob, descriptor.media_type, root, budget=budget, what=what, whiteouts=whiteouts, diff_id=diff_id)
        while blob.read(CHUNK):  # the rest of the blob, so its digest is checked
            pass
    return report


def _discard(path: Path) -> None:
    """Removes a failed unpack's temp directory, without following anything a layer put in it."""
    try:
        remove_path(path)
    except FileNotFoundError:
        return
    except OSError as err:  # the error being raised matters more; say what is left behind
        log.warning("could not remove the partial unpack %s: %s", path, err.strerror or err)
