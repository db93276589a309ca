"""One command-line option as data: the single definition both parsers read.

click builds its options from these (imagekit.cli.group.click_options), and the click-free parser of the
run path (imagekit.cli.fastpath) reads argv against the same tuples, so `imagekit run` needs no second copy
of its options to start without importing click. Imports nothing: a table must cost nothing to load.
"""

from __future__ import annotations


from imagekit.values import value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

#: How a value is converted: str as given, int, dir (a path that must not be a file; click.Path(file_okay=False)),
#: existing-dir (must exist), bool (an optional true/false value: `--tls-verify`, `--tls-verify=false`).
ValueType: TypeAlias = 'Literal["str", "int", "dir", "existing-dir", "bool"]'


@value
class OptionSpec:
    """An option: its spellings, the name the command's callback gets it as, and click's attributes.
    is_flag takes no value (True when given); multiple collects every occurrence into a tuple; otherwise the
    last occurrence's value wins. envvar is read when the option is not given (click's rule: empty is unset)."""

    flags: tuple[str, ...]
    dest: str
    help: str
    is_flag: bool = False
    multiple: bool = False
    type: ValueType = "str"
    choices: tuple[str, ...] = ()
    default: object = None
    metavar: str | None = None
    envvar: str | None = None
