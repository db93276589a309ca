"""Frozen value classes, as `@dataclass(frozen=True)` makes them, without its start-up cost.

dataclasses writes each class's methods as source text and compiles it when the class is defined, and
importing it loads inspect (with ast, dis and tokenize): on this machine that was about a quarter of
`imagekit run --rm busybox true` (34 ms of 129 for the 26 classes a run defines). A value class here gets
the same behaviour from closures shared by every class, defined once:

- `__init__` takes the fields positionally or by keyword, in definition order (a base class's fields
  first), fills defaults and `field(default_factory=...)`, and calls `__post_init__` when the class has one;
- `==` and `hash` over the fields with `compare=True`, `repr` over those with `repr=True`, both by class;
- assignment and deletion raise FrozenInstanceError (an AttributeError, as dataclasses' is);
- `value(order=True)` adds `<`, `<=`, `>`, `>=` over the compared fields.

`replace`, `asdict` and `fields` are dataclasses' functions for these classes. Building an instance costs
about a third more than a dataclass's generated `__init__` (2.6 against 1.9 µs for ten keyword fields).
Annotations are only read for their names (every module uses `from __future__ import annotations`).

Imports: stdlib only. Every module may use it, and the modules' `Imports:` lines count it with the standard
library (tests/test_dependencies.py: EVERYWHERE).
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")


class _Missing:
    """No default was given (None is a default like any other)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a value."""


class Field:
    """One field of a value class: its name, default or default factory, and whether repr and == see it."""

    __slots__ = ("name", "default", "default_factory", "repr", "compare")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True, compare: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING, repr: bool = True,
          compare: bool = True) -> Any:
    """A field's default (or a factory called for each instance) and whether repr and == see it."""
    return Field(default, default_factory, repr, compare)


def value(cls: type[T] | None = None, *, order: bool = False) -> Any:
    """Makes `cls` a frozen value class (see the module docstring); `@value` or `@value(order=True)`."""

    def wrap(cls: type[T]) -> type[T]:
        _make_value(cls, order)
        return cls

    return wrap if cls is None else wrap(cls)


def fields(obj: object) -> tuple[Field, ...]:
    """The fields of a value class or instance, in `__init__`'s order."""
    try:
        return obj.__value_fields__  # type: ignore[attr-defined, no-any-return]
    except AttributeError:
        raise TypeError(f"{obj!r} is not a value class or instance") from None


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of value `obj` with `changes`; `__post_init__` checks it again, as for any new value."""
    current = {f.name: obj.__dict__[f.name] for f in fields(obj)}
    return obj.__class__(**(current | changes))


def asdict(obj: object) -> dict[str, Any]:
    """The fields of a value as a dict, recursively through values, lists, tuples and dicts (as
    dataclasses.asdict): what the container records store as JSON."""
    if not hasattr(obj, "__value_fields__") or isinstance(obj, type):
        raise TypeError(f"asdict() should be called on value instances, not {obj!r}")
    return _plain(obj)  # type: ignore[no-any-return]


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__value_fields__") and not isinstance(obj, type):
        return {f.name: _plain(obj.__dict__[f.name]) for f in obj.__value_fields__}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple is rebuilt from its fields
        return type(obj)(*(_plain(item) for item in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(item) for item in obj)
    if isinstance(obj, dict):
        return type(obj)((_plain(k), _plain(v)) for k, v in obj.items())
    return obj


def _collect(cls: type) -> tuple[Field, ...]:
    """The base classes' fields, then this class's annotations in order; a class attribute is a default."""
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for inherited in getattr(base, "__value_fields__", ()):
            found[inherited.name] = inherited
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.replace("typing.", "").startswith("ClassVar"):
            continue
        declared = cls.__dict__.get(name, MISSING)
        spec = declared if isinstance(declared, Field) else Field(default=declared)
        spec.name = name
        if isinstance(declared, Field):
            if spec.default is MISSING:
                delattr(cls, name)  # a factory or a required field: no class attribute stands in for it
            else:
                setattr(cls, name, spec.default)
        found[name] = spec  # a field a base declared keeps its place, as with dataclasses
    ordered = tuple(found.values())
    required_after_default = next((f.name for i, f in enumerate(ordered) if _required(f)
                                   and any(not _required(g) for g in ordered[:i])), None)
    if required_after_default:
        raise TypeError(f"non-default argument {required_after_default!r} follows default argument")
    return ordered


def _required(spec: Field) -> bool:
    return spec.default is MISSING and spec.default_factory is MISSING


def _make_value(cls: type, order: bool) -> None:
    specs = _collect(cls)
    names = tuple(f.name for f in specs)
    compared = tuple(f.name for f in specs if f.compare)
    shown = tuple(f.name for f in specs if f.repr)
    post_init = getattr(cls, "__post_init__", None)
    set_field = object.__setattr__
    title = cls.__qualname__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(specs):
            raise TypeError(f"{title}.__init__() takes {len(specs) + 1} positional arguments but {len(args) + 1} were given")
        for name, given in zip(names, args):
            set_field(self, name, given)
        for spec in specs[len(args):]:
            given = kwargs.pop(spec.name, MISSING)
            if given is MISSING:
                if spec.default is not MISSING:
                    given = spec.default
                elif spec.default_factory is not MISSING:
                    given = spec.default_factory()
                else:
                    raise TypeError(f"{title}.__init__() missing required argument: {spec.name!r}")
            set_field(self, spec.name, given)
        if kwargs:
            raise TypeError(f"{title}.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if post_init is not None:
            post_init(self)

    def key(self: Any) -> tuple[Any, ...]:
        values = self.__dict__
        return tuple(values[name] for name in compared)

    def __eq__(self: Any, other: object) -> bool:
        return key(self) == key(other) if other.__class__ is self.__class__ else NotImplemented

    def __hash__(self: Any) -> int:
        return hash(key(self))

    def __repr__(self: Any) -> str:
        values = self.__dict__
        return f"{self.__class__.__qualname__}(" + ", ".join(f"{name}={values[name]!r}" for name in shown) + ")"

    def __setattr__(self: Any, name: str, given: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: Any, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    methods: dict[str, Callable[..., Any]] = {
        "__init__": __init__, "__eq__": __eq__, "__hash__": __hash__, "__repr__": __repr__,
        "__setattr__": __setattr__, "__delattr__": __delattr__,
    }
    if order:
        methods.update(_comparisons(key))
    own = cls.__dict__
    for name, method in methods.items():
        # A method the class writes itself wins, as with dataclasses; a class that writes only __eq__ has
        # __hash__ = None put there by Python, and gets the fields' hash as a frozen dataclass does.
        if name in own and not (name == "__hash__" and own["__hash__"] is None and "__eq__" in own):
            continue
        method.__qualname__ = f"{title}.{name}"
        setattr(cls, name, method)
    cls.__value_fields__ = specs  # type: ignore[attr-defined]
    cls.__match_args__ = names  # type: ignore[attr-defined]


def _comparisons(key: Callable[[Any], tuple[Any, ...]]) -> dict[str, Callable[..., Any]]:
    """order=True: instances of one class compare as the tuples of their compared fields."""

    def __lt__(self: Any, other: Any) -> bool:
        return key(self) < key(other) if other.__class__ is self.__class__ else NotImplemented

    def __le__(self: Any, other: Any) -> bool:
        return key(self) <= key(other) if other.__class__ is self.__class__ else NotImplemented

    def __gt__(self: Any, other: Any) -> bool:
        return key(self) > key(other) if other.__class__ is self.__class__ else NotImplemented

    def __ge__(self: Any, other: Any) -> bool:
        return key(self) >= key(other) if other.__class__ is self.__class__ else NotImplemented

    return {"__lt__": __lt__, "__le__": __le__, "__gt__": __gt__, "__ge__": __ge__}
