"""imagekit's settings file: `$IMAGEKIT_CONFIG`, else `$XDG_CONFIG_HOME/imagekit/config.json`
(default `~/.config/imagekit/config.json`).

A JSON object whose keys are spelled as in dockerd's daemon.json, so a snippet can be copied from
there; today the one key is `registry-mirrors` (a list of URLs). Command-line options and their
environment variables take precedence over the file. A missing file means no settings; a file that
is not valid JSON, or holds a key imagekit does not know (a typo would otherwise be ignored
silently), is a one-line ImagekitError naming the file. The file is read only when a setting is needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagekit.errors import ImagekitError
from imagekit.registry.credentials import load_json_file

CONFIG_ENV = "IMAGEKIT_CONFIG"
KEYS = frozenset({"registry-mirrors"})


class ConfigError(ImagekitError):
    """The settings file is unreadable, not JSON, or holds an unknown key or a value of the wrong type."""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config_home) / "imagekit" / "config.json"


def load_config(path: Path) -> dict[str, Any]:
    """The settings in `path` (empty when it does not exist), checked for unknown keys."""
    data = load_json_file(path, ConfigError)
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    return data


def registry_mirrors(path: Path) -> tuple[str, ...]:
    """The `registry-mirrors` list of the settings file, as written (validation is the caller's)."""
    value = load_config(path).get("registry-mirrors", [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: 'registry-mirrors' must be a list of URL strings")
    return tuple(value)
