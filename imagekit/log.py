"""imagekit's loggers, handed out so that a process that never logs never imports logging.

Modules ask `logger(name)` for their logger instead of calling logging.getLogger; the CLI hands its set-up
(stderr, the one-line format, --debug) to `when_logging`, which runs it at once if logging is already in
use and otherwise just before the first logger is handed out. `imagekit run` of a stored image logs
nothing, and logging with what it imports (string, traceback, its locks) is a few milliseconds of every
such start.

Imports: stdlib only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    import logging


_pending: Callable[[], None] | None = None


def logger(name: str) -> logging.Logger:
    """logging.getLogger(name), once any set-up `when_logging` holds has run."""
    import logging

    _run_pending()
    return logging.getLogger(name)


def when_logging(setup: Callable[[], None]) -> None:
    """Runs `setup` now if logging is in use, else before the first `logger()`; a later call replaces a pending one."""
    global _pending
    _pending = setup
    if "logging" in sys.modules:
        _run_pending()


def _run_pending() -> None:
    global _pending
    setup, _pending = _pending, None
    if setup is not None:
        setup()
