"""imagekit.values behaves as `@dataclass(frozen=True)` does, where imagekit relies on it: checked case by case
and, over generated classes and instances, against dataclasses itself."""

from __future__ import annotations

import dataclasses
import pickle
from collections import namedtuple
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagekit.values import FrozenInstanceError, asdict, field, fields, replace, value


@value
class Point:
    """A docstring, as every imagekit value has."""

    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    note: str = field(default="", repr=False, compare=False)


@value
class Checked:
    size: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("negative size")


@value(order=True)
class Version:
    major: int
    minor: int = 0


@value
class Labeled(Point):
    label: str = "none"


def test_init_takes_fields_by_position_or_keyword_with_defaults() -> None:
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert Point(1).y == 0 and Point(1).tags == ()
    assert Point(1).extra is not Point(1).extra  # a factory runs for each instance


@pytest.mark.parametrize("call", [
    lambda: Point(),  # missing x
    lambda: Point(1, 2, (), {}, "", "one too many"),
    lambda: Point(1, z=3),
])
def test_a_wrong_call_is_a_type_error(call: Any) -> None:
    with pytest.raises(TypeError):
        call()


def test_equality_and_hash_follow_the_compared_fields_and_the_class() -> None:
    assert Point(1, note="a") == Point(1, note="b")  # compare=False
    assert hash(Version(1, 2)) == hash(Version(1, 2)) == hash((1, 2))
    with pytest.raises(TypeError):
        hash(Point(1))  # a dict field, as with a dataclass
    assert Point(1) != Point(2)
    assert Point(1) != Labeled(1)  # another class, even a subclass, is never equal
    assert Point(1).__eq__((1, 0, (), {})) is NotImplemented
    assert len({Version(1), Version(1), Version(2)}) == 2


def test_repr_names_the_shown_fields() -> None:
    assert repr(Point(1, note="secret")) == "Point(x=1, y=0, tags=(), extra={})"
    assert repr(Labeled(1)) == "Labeled(x=1, y=0, tags=(), extra={}, label='none')"


def test_fields_cannot_be_assigned_or_deleted() -> None:
    point = Point(1)
    with pytest.raises(FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y  # type: ignore[misc]
    assert point.x == 1 and point.y == 0


def test_post_init_checks_every_new_value_replace_included() -> None:
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)
    with pytest.raises(ValueError, match="negative"):
        replace(Checked(1), size=-1)


def test_replace_keeps_what_it_does_not_change_and_refuses_unknown_fields() -> None:
    point = Point(1, 2, ("a",), note="kept")
    changed = replace(point, y=5)
    assert (changed.x, changed.y, changed.tags, changed.note) == (1, 5, ("a",), "kept")
    assert point.y == 2
    with pytest.raises(TypeError):
        replace(point, z=1)


def test_order_compares_the_fields_as_a_tuple() -> None:
    assert Version(1, 2) < Version(1, 10) <= Version(1, 10) < Version(2) > Version(1, 99) >= Version(1, 99)
    assert sorted([Version(2), Version(1, 5), Version(1)]) == [Version(1), Version(1, 5), Version(2)]
    with pytest.raises(TypeError):
        Version(1) < (1, 0)  # noqa: B015 - only values of one class are ordered


def test_a_subclass_adds_its_fields_after_its_bases() -> None:
    assert [f.name for f in fields(Labeled)] == ["x", "y", "tags", "extra", "note", "label"]
    assert Labeled(1, 2, label="l").label == "l"
    assert fields(Labeled(1)) == fields(Labeled)
    with pytest.raises(TypeError):
        fields(object())


def test_a_subclass_that_redeclares_a_field_keeps_its_place() -> None:
    @value
    class Moved(Point):
        y: int = 7

    assert [f.name for f in fields(Moved)] == ["x", "y", "tags", "extra", "note"] and Moved(1).y == 7


def test_a_required_field_after_a_default_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="non-default argument 'late'"):
        @value
        class Bad:
            early: int = 0
            late: int


def test_a_method_the_class_writes_wins() -> None:
    @value
    class Shown:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Shown("a")) == "<a>" and Shown("a") == Shown("a")


def test_asdict_recurses_through_values_and_containers() -> None:
    pair = namedtuple("pair", "a b")
    nested = Labeled(1, tags=("t",), extra={"k": 1}, label="l")
    assert asdict(nested) == {"x": 1, "y": 0, "tags": ("t",), "extra": {"k": 1}, "note": "", "label": "l"}

    @value
    class Outer:
        inner: tuple[Point, ...]
        by_name: dict[str, Version]
        both: Any

    outer = Outer((Point(1),), {"v": Version(2)}, pair(Version(3), [Point(4)]))
    assert asdict(outer) == {
        "inner": ({"x": 1, "y": 0, "tags": (), "extra": {}, "note": ""},),
        "by_name": {"v": {"major": 2, "minor": 0}},
        "both": pair({"major": 3, "minor": 0}, [{"x": 4, "y": 0, "tags": (), "extra": {}, "note": ""}]),
    }
    with pytest.raises(TypeError):
        asdict(Point)


def test_values_pickle() -> None:
    point = Labeled(1, tags=("a",), label="l")
    assert pickle.loads(pickle.dumps(point)) == point


_NAMES = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5, unique=True)
_LEAF = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.tuples(st.integers(0, 2)))


@given(names=_NAMES, data=st.data())
def test_same_behaviour_as_a_frozen_dataclass(names: list[str], data: st.DataObject) -> None:
    """A class made both ways from one field list: the same init, ==, hash, repr, asdict and replace."""
    defaults = data.draw(st.integers(0, len(names)))  # the last `defaults` fields have a default
    namespace: dict[str, Any] = {"__annotations__": {name: "Any" for name in names}}
    for name in names[len(names) - defaults:]:
        namespace[name] = data.draw(_LEAF)
    ours = value(type("Made", (), dict(namespace, __annotations__=dict(namespace["__annotations__"]))))
    theirs = dataclasses.dataclass(frozen=True)(type("Made", (), dict(namespace, __annotations__=dict(namespace["__annotations__"]))))
    given_count = data.draw(st.integers(len(names) - defaults, len(names)))
    args = [data.draw(_LEAF) for _ in range(given_count)]
    by_keyword = data.draw(st.booleans())
    kwargs = dict(zip(names, args)) if by_keyword else {}
    positional = [] if by_keyword else args
    a, b = ours(*positional, **kwargs), theirs(*positional, **kwargs)
    assert repr(a) == repr(b)
    assert asdict(a) == dataclasses.asdict(b)
    assert hash(a) == hash(b)  # both hash the tuple of the fields
    other = [data.draw(_LEAF) for _ in names]
    assert (a == ours(*other)) == (b == theirs(*other))
    change = {names[0]: data.draw(_LEAF)}
    assert asdict(replace(a, **change)) == dataclasses.asdict(dataclasses.replace(b, **change))
