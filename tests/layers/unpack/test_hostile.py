"""The hostile corpus (hostile.py) against `unpack`, with both resolvers, and through the CLI.

Every case: nothing outside the target changes; a refused layer fails with one line naming the
problem and leaves no target behind; an accepted one lands wholly inside the target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imagekit.errors import ImagekitError
from imagekit.layers.unpack import unpack
from tests.layers.unpack.conftest import Sandbox
from tests.layers.unpack.hostile import BY_NAME, CASES, Case, blobs
from tests.layers.unpack.tars import MEDIA_TYPES, image, store_image
from tests.store.conftest import one_line_error, run_imagekit


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(BY_NAME) == len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_layer_stays_inside_the_target(case: Case, sandbox: Sandbox, resolver: str) -> None:
    img = image((blob, MEDIA_TYPES[case.codec]) for blob in blobs(case, sandbox.outside))
    if case.error is None:
        unpack(img, sandbox.target, limits=case.limits)
        if case.check is not None:
            case.check(sandbox.target, sandbox.outside)
    else:
        with pytest.raises(ImagekitError) as caught:
            unpack(img, sandbox.target, limits=case.limits)
        sandbox.assert_untouched()  # first: an escape is worse than a wrong message
        message = str(caught.value)
        assert "\n" not in message
        assert case.error in message, message
        assert message.startswith("layer "), message
        assert not sandbox.target.exists()
    sandbox.assert_untouched()


@pytest.mark.parametrize("name", ["dotdot", "hardlink-etc-passwd", "corrupt-gzip", "symlink-loop", "truncated-tar", "unknown-typeflag"])
def test_cli_refuses_with_one_line(name: str, sandbox: Sandbox, tmp_path: Path) -> None:
    case = BY_NAME[name]
    store = tmp_path / "store"
    ref = store_image(store, image((blob, MEDIA_TYPES[case.codec]) for blob in blobs(case, sandbox.outside)))
    result = run_imagekit(store, "unpack", ref, str(sandbox.target))
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("imagekit: layer 1/1") and case.error in line, line
    assert not sandbox.target.exists()
    sandbox.assert_untouched()
