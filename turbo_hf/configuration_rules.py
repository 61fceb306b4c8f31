"""What each TurboConfig field accepts, as data: one `FieldRule` per field (its type, finiteness and
range or choices) in `TURBO_FIELD_RULES`, the keys transformers' config machinery passes besides the
fields, and the message for keywords that name no field.

`TurboConfig` checks itself with the table; the recipes' argument parser checks its flags with it
(`check_turbo_field`), so a value is refused with the same words wherever it is first seen.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from transformers import GenerationConfig

LOSS_MODES = ("turbo", "cross", "vanilla", "in_modal")
TEXT_POOLINGS = ("cls", "mean", "last")
CLASSIFY_ON = ("first", "both")
AUDIO_WINDOWS = ("full", "batch")
FEATURE_NORMS = (None, "batch")
DUPLICATE_NEGATIVES = ("keep", "mask")


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


def _class_weights(value: Any, label: str) -> list[float] | str:
    """'balanced', or finite positive numbers (stored as floats); their count is checked with num_labels."""
    if value == "balanced":
        return value
    expected = "None, 'balanced' or a list of finite positive numbers (one per class, in label id order)"
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{label} must be {expected}, got {value!r}")
    bad = [
        w
        for w in value
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (math.isfinite(w) and w > 0)
    ]
    if bad:
        raise ValueError(f"{label} must be {expected}, got {value!r}: {bad} are not")
    return [float(weight) for weight in value]


# -1 means "keep the encoder checkpoint's own setting".
def _keep_or_probability(optional: bool = False) -> FieldRule:
    rule = number("in [0, 1)", lambda value: value == -1 or 0.0 <= value < 1.0, optional)
    keep = "-1 (keep the encoder's own setting) or "
    return replace(
        rule, expected=("None, " if optional else "") + keep + rule.expected.removeprefix("None or ")
    )


# What every TurboConfig field accepts (and the PreTrainedConfig fields a Turbo classifier relies on),
# checked at construction, when the model is built and by save_pretrained; the recipes check their flags
# with it too (`check_turbo_field`). A new field needs a rule here (tests/test_configuration.py checks).
TURBO_FIELD_RULES: dict[str, FieldRule] = {
    "projection_dim": integer(1),
    "dropout": number("in [0, 1)", lambda value: 0.0 <= value < 1.0),
    "encoder_dropout": _keep_or_probability(optional=True),
    "audio_encoder_dropout": _keep_or_probability(optional=True),
    "text_encoder_dropout": _keep_or_probability(optional=True),
    "encoder_layerdrop": _keep_or_probability(),
    "loss_mode": choice(LOSS_MODES),
    "ce_weight": number("in [0, 1]", lambda value: 0.0 <= value <= 1.0),
    "temperature": number("> 0", lambda value: value > 0),
    "text_pooling": choice((None, *TEXT_POOLINGS)),
    "classify_on": choice(CLASSIFY_ON),
    "class_weights": custom(
        "None, 'balanced' or one positive number per class", _class_weights, optional=True
    ),
    "audio_window": choice(AUDIO_WINDOWS),
    "feature_norm": choice(FEATURE_NORMS),
    "duplicate_negatives": choice(DUPLICATE_NEGATIVES),
    "gather_across_processes": flag(),
    "initializer_range": number("> 0", lambda value: value > 0),
    "num_labels": integer(2, " (a classifier needs two classes or more)"),
    "problem_type": choice((None, "single_label_classification")),
    "return_dict": flag(optional=True),
    "output_hidden_states": flag(optional=True),
}


def check_turbo_field(name: str, value: Any, label: str | None = None) -> Any:
    """`value` checked against the rule of TurboConfig field `name` (and normalised as the config stores
    it); the error names `label` (default `TurboConfig.<name>`), the value and what was expected."""
    if name not in TURBO_FIELD_RULES:
        raise KeyError(
            f"{name!r} is not a TurboConfig field with a rule; fields: {sorted(TURBO_FIELD_RULES)}"
        )
    return TURBO_FIELD_RULES[name].check(value, label or f"TurboConfig.{name}")


# Keys transformers 5.24's PreTrainedConfig takes besides its dataclass fields (configuration_utils.py):
# read by its __post_init__ (num_labels, torch_dtype, name_or_path, _commit_hash, output_attentions,
# attn / experts implementation, per_layer_config, the RoPE keys), written by to_dict (model_type,
# _name_or_path) or set on a config by modeling_utils, quantizers, pipelines and remote code.
# Its __post_init__ also drops the generation parameters a hub config may carry.
PRETRAINED_CONFIG_KEYS = frozenset(
    {
        "num_labels",
        "torch_dtype",
        "name_or_path",
        "_name_or_path",
        "_commit_hash",
        "output_attentions",
        "attn_implementation",
        "experts_implementation",
        "_attn_implementation_internal",
        "_experts_implementation_internal",
        "per_layer_config",
        "rope_scaling",
        "rope_theta",
        "model_type",
        "auto_map",
        "custom_pipelines",
        "quantization_config",
        "_is_quantized",
        "fusion_config",
        "distributed_config",
        *GenerationConfig._get_default_generation_params(),
    }
)
# Names a misspelt keyword is matched against; overrides of a loaded config closer than this to one of
# them are taken as misspellings even where the rest of the keywords go on to the model.
SUGGESTED_FIELDS = (*TURBO_FIELD_RULES, "id2label", "label2id", "audio_config", "text_config")
NEAR_MISS_CUTOFF = 0.8


def closest_turbo_field(name: str, cutoff: float = 0.6) -> str | None:
    """The TurboConfig field `name` is most likely a misspelling of (None if none is that close)."""
    return closest(name, SUGGESTED_FIELDS, cutoff)


def unknown_keywords_message(names: list[str]) -> str:
    hint = (
        ""
        if all(closest_turbo_field(name) for name in names)
        else "; encoder settings belong in audio_config / text_config"
    )
    arguments = "argument" if len(names) == 1 else "arguments"
    return f"TurboConfig got unknown keyword {arguments} {describe_unknown(names, SUGGESTED_FIELDS)}{hint}"


__all__ = [
    "LOSS_MODES",
    "TEXT_POOLINGS",
    "CLASSIFY_ON",
    "AUDIO_WINDOWS",
    "FEATURE_NORMS",
    "DUPLICATE_NEGATIVES",
    "TURBO_FIELD_RULES",
    "FieldRule",
    "check_turbo_field",
    "closest_turbo_field",
]
