"""What a hyper-parameter accepts, as data: one `FieldRule` per field (its type, finiteness and range
or choices) and the message for keywords that name no field.

`TurboConfig` keeps its table of rules beside its fields; the recipes' argument parser checks its
flags with the same table, so a value is refused with the same words wherever it is first seen.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldRule:
    """What one field accepts. `kind` is checked first (a TypeError), then finiteness for numbers and
    `accepts` (a ValueError); `expected` says both in words ("a finite number > 0")."""

    kind: str  # "number" | "integer" | "string" | "bool" | "any"
    expected: str
    accepts: Callable[[Any], bool] | None = None
    optional: bool = False  # None is accepted
    # "any" rules normalise and check the value themselves (raising with the label they are given).
    convert: Callable[[Any, str], Any] | None = None

    def check(self, value: Any, label: str) -> Any:
        """`value` as the field stores it (ints given for numbers become floats); raises otherwise."""
        if value is None and self.optional:
            return None
        if self.convert is not None:
            return self.convert(value, label)
        value = _of_kind(self, value, label)
        if self.kind == "number" and not math.isfinite(value):
            raise ValueError(f"{label} must be {self.expected}, got {value!r}")
        if self.accepts is not None and not self.accepts(value):
            raise ValueError(f"{label} must be {self.expected}, got {value!r}")
        return value


_KIND_NAMES = {"number": "a number", "integer": "an integer", "string": "a string", "bool": "a bool"}


def _of_kind(rule: FieldRule, value: Any, label: str) -> Any:
    # bool is an int in Python: True is no temperature and no projection size.
    if rule.kind == "bool" and isinstance(value, bool):
        return value
    if rule.kind == "number" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if rule.kind == "integer" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if rule.kind == "string" and isinstance(value, str):
        return value
    raise TypeError(
        f"{label} must be {rule.expected}, got {value!r} (a {type(value).__name__}, not {_KIND_NAMES[rule.kind]})"
    )


def number(expected_range: str, accepts: Callable[[float], bool], optional: bool = False) -> FieldRule:
    """A finite real number in a range (`expected_range` in words: "> 0", "in [0, 1)")."""
    expected = f"a finite number {expected_range}"
    return FieldRule("number", f"None or {expected}" if optional else expected, accepts, optional)


def integer(minimum: int, why: str = "") -> FieldRule:
    return FieldRule("integer", f"an integer >= {minimum}{why}", lambda value: value >= minimum)


def choice(choices: tuple) -> FieldRule:
    """One of `choices` (None among them makes the field optional)."""
    return FieldRule("string", f"one of {choices}", lambda value: value in choices, None in choices)


def flag(optional: bool = False) -> FieldRule:
    return FieldRule("bool", "None, True or False" if optional else "True or False", optional=optional)


def custom(expected: str, convert: Callable[[Any, str], Any], optional: bool = False) -> FieldRule:
    """A rule whose `convert(value, label)` checks and normalises the value itself."""
    return FieldRule("any", expected, optional=optional, convert=convert)


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate `name` was most likely meant to be (a misspelling), if any is close enough."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def describe_unknown(names: Iterable[str], candidates: Iterable[str]) -> str:
    """ "'temprature' (did you mean 'temperature'?), 'foo'" for keywords that name no field."""
    candidates = list(candidates)
    described = []
    for name in names:
        match = closest(name, candidates)
        described.append(f"{name!r} (did you mean {match!r}?)" if match else repr(name))
    return ", ".join(described)


__all__ = ["FieldRule", "number", "integer", "choice", "flag", "custom", "closest", "describe_unknown"]
