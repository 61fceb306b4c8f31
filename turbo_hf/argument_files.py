"""Argument files of the recipes (.json / .yaml): read with errors that name the file, line and column,
and each value checked against its dataclass field's type and converted as its command-line flag would
read it, with errors that name the file and the key."""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool


def read_argument_file(path: Path) -> dict[str, Any]:
    """The mapping of a .json / .yaml argument file; errors name the file (and the line and column)."""
    if path.is_dir():
        raise ValueError(f"argument file {path} is a folder; expected a .json or .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(
            f"argument file {path} does not exist (a first argument ending in .json / .yaml is read as one)"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"argument file {path} cannot be read: {err}") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or err
        raise ValueError(f"{path}{where}: not valid YAML: {problem}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of argument names to values")
    return values


def _members(annotation: Any) -> tuple:
    return (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )


def _takes_containers(annotation: Any) -> bool:
    return any((typing.get_origin(member) or member) in (dict, list) for member in _members(annotation))


def _describe(action: argparse.Action) -> str:
    if action.choices is not None:
        return f"one of {list(action.choices)}"
    if action.type is string_to_bool:
        return "true or false"
    return {int: "an integer", float: "a number", str: "a string"}.get(action.type, f"a {action.type}")


def _as_flag_value(value: Any, action: argparse.Action, annotation: Any) -> Any:
    """`value` of an argument file as the dataclass field takes it, read as its command-line flag reads
    a string; raises ValueError (with no location) for a value the flag would not accept."""
    if value is None or isinstance(value, (dict, list)):
        if (value is None and type(None) in _members(annotation)) or (
            value is not None and _takes_containers(annotation)
        ):
            return value
    elif isinstance(value, str):
        try:
            converted = action.type(value) if action.type is not None else value
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            pass
        else:
            if action.choices is None or converted in action.choices:
                return converted
    elif isinstance(value, bool):
        # A bool for a string field is kept: `resume_from_checkpoint: true` means the newest checkpoint.
        if action.type in (string_to_bool, str) and action.choices is None:
            return value
        # YAML 1.1 reads an unquoted `no` / `yes` as a bool: for a field of choices (`eval_strategy: no`)
        # the word was meant.
        if action.choices is not None:
            for word in ("no", "false") if value is False else ("yes", "true"):
                try:
                    return _as_flag_value(word, action, annotation)
                except ValueError:
                    pass
    elif isinstance(value, (int, float)):
        if action.type is float or (action.type is int and isinstance(value, int)):
            return action.type(value)
        if action.type is str or action.choices is not None:
            try:
                return _as_flag_value(str(value), action, annotation)
            except ValueError:
                pass
    raise ValueError(f"{value!r} is not {_describe(action)}")


def typed_file_values(
    path: Path, values: dict[str, Any], parser: HfArgumentParser, dataclass_types: tuple
) -> dict[str, Any]:
    """Each value of an argument file checked against, and converted to, its field's type as the
    command line would read it (HfArgumentParser.parse_dict passes values on unchecked: "two" for
    `max_steps` would fail in the Trainer, and PyYAML reads `2e-5` as a string)."""
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    annotations, free = {}, set()
    for dataclass_type in dataclass_types:
        annotations.update(typing.get_type_hints(dataclass_type))
        # TurboConfig fields without a flag type take any YAML value; TurboConfig's rules check them.
        free.update(getattr(dataclass_type, "_yaml_fields", ()))
    typed = {}
    for key, value in values.items():
        if key in free or key not in actions:
            typed[key] = value
            continue
        try:
            typed[key] = _as_flag_value(value, actions[key], annotations[key])
        except ValueError as err:
            raise ValueError(f"{path}: {key!r}: {err} (as --{key} takes)") from None
    return typed


__all__ = ["read_argument_file", "typed_file_values"]
