"""Random sequences of tar entries never reach outside the target, and fail only with one-line LayerErrors.

Names and link targets are drawn from pieces that matter: `..`, `.`, absolute paths aimed at the
canaries, whiteout prefixes, names that later entries reuse as directories, symlinks or hardlinks.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagekit.errors import LayerError
from imagekit.layers.unpack import unpack
from tests.layers.unpack.conftest import Sandbox
from tests.layers.unpack.tars import E, directory, fifo, file, hardlink, layers_image, symlink, tar

OUTSIDE = "@OUTSIDE@"  # replaced by the sandbox path: absolute names and targets aimed at the canaries
COMPONENTS = ["a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", "outside.txt", "etc", OUTSIDE]
TARGETS = ["/", "..", "../..", "a", "a/b", "/a/b", "../../..", OUTSIDE, OUTSIDE + "/outside.txt", "/etc/passwd", "b/../../a", "a/./b/"]

names = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4).map("/".join)
entries = st.one_of(
    st.builds(lambda n, d: ("file", n, d), names, st.binary(max_size=64)),
    st.builds(lambda n: ("dir", n, ""), names),
    st.builds(lambda n, t: ("symlink", n, t), names, st.sampled_from(TARGETS)),
    st.builds(lambda n, t: ("hardlink", n, t), names, st.one_of(st.sampled_from(TARGETS), names)),
    st.builds(lambda n: ("fifo", n, ""), names),
)
layers = st.lists(st.lists(entries, min_size=1, max_size=10), min_size=1, max_size=3)


def _entry(kind: str, name: str, extra: object, outside: str) -> E:
    name = name.replace(OUTSIDE, outside)
    if kind == "file":
        assert isinstance(extra, bytes)
        return file(name, extra)
    if kind == "dir":
        return directory(name)
    if kind == "fifo":
        return fifo(name)
    target = str(extra).replace(OUTSIDE, outside)
    return symlink(name, target) if kind == "symlink" else hardlink(name, target)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers)
def test_random_layers_stay_inside(resolver: str, spec: list[list[tuple[str, str, object]]]) -> None:
    with tempfile.TemporaryDirectory() as base:
        sandbox = Sandbox(Path(base))
        outside = str(sandbox.outside)
        image = layers_image(*(tar([_entry(kind, name, extra, outside) for kind, name, extra in layer]) for layer in spec))
        try:
            unpack(image, sandbox.target)
        except LayerError as err:
            assert "\n" not in str(err) and str(err).startswith("layer ")
            assert not sandbox.target.exists()
        else:
            for dirpath, dirnames, filenames in os.walk(sandbox.target):
                assert not [n for n in dirnames + filenames if n.startswith(".wh.")], dirpath
        sandbox.assert_untouched()
