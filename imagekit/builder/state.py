"""One build stage as it stands after each step: image config, layers, cache key, and the build-time
facts that are not part of the image (ARG values, whether CMD was set in this stage).

Values only; the builder replaces a StageState after every instruction.

Imports: stdlib, imagekit.config, imagekit.oci.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagekit.config import ImageConfig
from imagekit.oci import Descriptor
from imagekit.values import field, value

#: The PATH a RUN gets when the image sets none (BuildKit's and runc's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@value
class Layer:
    """One layer of the stage's image: its blob descriptor and its uncompressed digest."""

    descriptor: Descriptor
    diff_id: str


@value
class StageState:
    """A stage after some of its steps. `key` is the cache key of the last step."""

    config: ImageConfig
    layers: tuple[Layer, ...]
    key: str
    args: Mapping[str, str] = field(default_factory=dict)
    cmd_set: bool = False

    def run_env(self) -> tuple[str, ...]:
        """The environment of a RUN: the image's Env, then ARG values that no ENV overrides
        (build args are visible to RUN but never stored in the image), and a default PATH."""
        env = list(self.config.env)
        names = {item.partition("=")[0] for item in env}
        env += [f"{name}={value}" for name, value in self.args.items() if name not in names]
        if "PATH" not in names and "PATH" not in self.args:
            env.append(f"PATH={DEFAULT_PATH}")
        return tuple(env)
