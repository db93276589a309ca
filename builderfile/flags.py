"""Instruction flags as BuildKit's BFlags reads them: declared per instruction, then parsed from `--name[=value]`.

Owns the three flag kinds (bool, string, repeatable strings) and the errors for unknown, duplicate
and valueless flags, with a suggestion for a near miss (`--form` -> `--from`). Stdlib only; must
not import imagekit.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from builderfile.errors import InstructionError


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag kind: "bool" (`--link`, `--link=false`), "string" (`--from=x`) or "strings" (repeatable)."""

    kind: str


BOOL, STRING, STRINGS = Flag("bool"), Flag("string"), Flag("strings")


class Flags:
    """BuildKit's BFlags: the flags one instruction declares, parsed from the node's `--flag` words."""

    def __init__(self, keyword: str, args: tuple[str, ...], declared: dict[str, Flag]) -> None:
        self.values: dict[str, object] = {}
        for arg in args:
            if arg == "--":
                break
            if not arg.startswith("--"):
                raise InstructionError(f"{keyword} flag should start with --: {arg}")
            name, has_value, value = arg[2:].partition("=")
            flag = declared.get(name)
            if flag is None:
                raise InstructionError(_unknown_flag(keyword, name, declared))
            if name in self.values and flag is not STRINGS:
                raise InstructionError(f"{keyword} has the flag --{name} twice; give it once")
            if flag is BOOL:
                if has_value and value == "":
                    raise InstructionError(f"{keyword} --{name}= needs a value: true or false")
                if value.lower() not in ("true", "false", ""):
                    raise InstructionError(f"{keyword} --{name} expects true or false, not {value!r}")
                self.values[name] = value.lower() != "false"
            elif not has_value:
                raise InstructionError(f"{keyword} --{name} needs a value: --{name}=VALUE")
            elif flag is STRINGS:
                self.values.setdefault(name, ())
                self.values[name] += (value,)  # type: ignore[operator]
            else:
                self.values[name] = value

    def string(self, name: str) -> str:
        return self.values.get(name, "")  # type: ignore[return-value]

    def strings(self, name: str) -> tuple[str, ...]:
        return self.values.get(name, ())  # type: ignore[return-value]

    def bool(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def optional_bool(self, name: str) -> bool | None:
        return self.values.get(name)  # type: ignore[return-value]


def _unknown_flag(keyword: str, name: str, declared: dict[str, Flag]) -> str:
    if not declared:
        return f"{keyword} takes no flags, but got --{name}"
    hint = difflib.get_close_matches(name, list(declared), n=1)
    known = ", ".join(f"--{flag}" for flag in sorted(declared))
    suggestion = f" (did you mean --{hint[0]}?)" if hint else ""
    return f"{keyword} does not take --{name}{suggestion}; it takes {known}"
