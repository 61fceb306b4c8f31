"""The recipes' arguments: the argument groups beside TurboTrainingArguments, and reading them from
the command line or from a .json / .yaml file followed by command-line overrides."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, PreTrainedConfig

from .audio import check_max_duration
from .configuration_rules import check_turbo_field
from .configuration_turbo import TurboConfig
from .data.manifest import ManifestOptions


def _documented_arguments(config_class: type) -> dict[str, str]:
    """`name -> description` from the "Args:" section of a transformers-style config docstring."""
    helps: dict[str, list[str]] = {}
    current = None
    for line in inspect.cleandoc(config_class.__doc__ or "").splitlines():
        entry = re.match(r"^    (\w+) \(", line)
        if entry:
            current = helps.setdefault(entry[1], [])
        elif current is not None and line.startswith("        "):
            current.append(line.strip())
        elif line.strip():
            current = None
    return {name: " ".join(words) for name, words in helps.items()}


# Types HfArgumentParser turns into flags; a config field of any other type (e.g. a list or a str)
# becomes a string flag read as YAML ("balanced", "[1.0, 2.5]").
_FLAG_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _flag_type(annotation: Any) -> Any:
    """`int`, `float | None` ... for a field's annotation (a string or a type); None if it has no flag."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [part.strip() for part in text.split("|")]
    kinds = [_FLAG_TYPES.get(part) for part in parts if part != "None"]
    if len(kinds) != 1 or kinds[0] is None:
        return None
    return kinds[0] | None if "None" in parts else kinds[0]


def with_config_fields(config_class: type[PreTrainedConfig]):
    """Class decorator: add every hyper-parameter of `config_class` (its own fields, not the encoder
    sub-configs nor PreTrainedConfig's) as a dataclass field with the config's default and its
    docstring's description as help, so that a default lives in the config only."""
    inherited = {config_field.name for config_field in dataclasses.fields(PreTrainedConfig)}
    inherited |= set(getattr(config_class, "sub_configs_defaults", {}))
    own = [
        config_field
        for config_field in dataclasses.fields(config_class)
        if config_field.name not in inherited
    ]
    helps = _documented_arguments(config_class)

    def add_fields(cls: type) -> type:
        cls._config_fields, cls._yaml_fields = [config_field.name for config_field in own], []
        for config_field in own:
            name, default, flag_type = config_field.name, config_field.default, _flag_type(config_field.type)
            if default is dataclasses.MISSING:
                default = config_field.default_factory()
            help_text = f"{config_class.__name__}: {helps.get(name, '')}"
            if flag_type is None:
                cls._yaml_fields.append(name)
                flag_type, default = str | None, None if default is None else json.dumps(default)
                help_text += " (a YAML / JSON value)"
            cls.__annotations__[name] = flag_type
            setattr(cls, name, field(default=default, metadata={"help": help_text}))
        return dataclass(cls)

    return add_fields


@with_config_fields(TurboConfig)
class ModelArguments:
    """The encoders, and every TurboConfig hyper-parameter (added from TurboConfig: its defaults and
    its docstring's help)."""

    audio_model_name_or_path: str = field(
        default="facebook/wav2vec2-base", metadata={"help": "Audio encoder: hub id or local folder."}
    )
    text_model_name_or_path: str = field(
        default="bert-base-uncased", metadata={"help": "Text encoder: hub id or local folder."}
    )
    freeze_feature_encoder: bool = field(
        default=False, metadata={"help": "Freeze the audio encoder's convolutional front end."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded encoders are stored."})
    model_revision: str | None = field(
        default=None, metadata={"help": "Revision of both encoders on the hub."}
    )

    def __post_init__(self):
        # Checked here, where the flags are parsed, by TurboConfig's own rules: `--temperature nan` is
        # refused before any encoder is downloaded, with the flag named. (The number of class weights
        # is checked with the classes, when the model is built.)
        for name, value in self.turbo_config_kwargs().items():
            try:
                check_turbo_field(name, value, label=f"--{name}")
            except TypeError as err:  # a wrong type is a bad value as far as an argument is concerned
                raise ValueError(str(err)) from None

    def turbo_config_kwargs(self) -> dict[str, Any]:
        """The TurboConfig keyword arguments these arguments hold."""
        values = {name: getattr(self, name) for name in self._config_fields}
        for name in self._yaml_fields:
            # A string from the command line ("balanced", "[1, 2.5]"); a json / yaml argument file gives
            # the value itself (a list), which is kept as it is.
            if isinstance(values[name], str):
                try:
                    values[name] = yaml.safe_load(values[name])
                except yaml.YAMLError as err:
                    raise ValueError(
                        f"--{name}: {values[name]!r} is not a YAML / JSON value ({err})"
                    ) from None
        return values


@dataclass
class DataArguments:
    """How examples become batches."""

    max_duration: float | None = field(
        default=15.0,
        metadata={"help": "Training crops longer utterances to a random window of this many seconds."},
    )
    eval_max_duration: float | None = field(
        default=None,
        metadata={"help": "Centre-crop evaluation audio to this many seconds (default: keep whole)."},
    )
    max_text_length: int = field(
        default=128, metadata={"help": "Transcripts are truncated to this many tokens."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Truncate the training set (debugging)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Truncate validation and test sets (debugging)."}
    )

    def __post_init__(self):
        for name in ("max_duration", "eval_max_duration"):
            setattr(self, name, check_max_duration(getattr(self, name), f"--{name}"))


@dataclass
class IemocapArguments:
    iemocap_root: str = field(
        default=None, metadata={"help": "Folder holding Session1..Session5 of the release."}
    )
    protocol: str = field(
        default="speaker", metadata={"help": "speaker (10 folds, 8/1/1) | session (5 folds)."}
    )
    fold: str = field(default="0", metadata={"help": "Fold number, or 'all' for the whole cross-validation."})
    validation_fraction: float = field(
        default=0.1,
        metadata={"help": "Session protocol: stratified validation share of the training sessions."},
    )
    on_missing: str = field(
        default="error",
        metadata={
            "help": "error | skip labelled utterances whose wav or transcript is missing, whose wav is "
            "not readable audio or whose label line does not parse (skips are counted by reason and logged)."
        },
    )
    method: str = field(
        default="all",
        metadata={
            "help": "all | improvised | scripted: the utterances of which dialogs to use. Scripted lines are "
            "read from the same scripts in every session, so they occur word for word in training; every "
            "test report breaks WA / UA down by method and counts those transcripts."
        },
    )


@dataclass
class ManifestArguments(ManifestOptions):
    """The manifest of run_dsd.py: its file, its columns (`ManifestOptions`), classes and validation."""

    manifest: str = field(
        default=None, metadata={"help": "CSV, TSV or JSONL with audio, text, label, split."}
    )
    labels: str | None = field(
        default=None,
        metadata={"help": "Comma-separated class names in index order (default: sorted values)."},
    )
    validation_fraction: float | None = field(
        default=None,
        metadata={
            "help": "For a manifest without validation rows: hold out this stratified, seeded fraction of "
            "the training rows as the validation split (e.g. 0.1)."
        },
    )


# What both recipes default to: pick the best checkpoint by validation after every epoch.
RECIPE_TRAINING_DEFAULTS: dict[str, Any] = {
    "load_best_model_at_end": True,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "report_to": "none",
}


def parse_recipe_arguments(dataclass_types: tuple, defaults: dict[str, Any], argv: list[str] | None = None):
    """Parse the command line, or a .json / .yaml file optionally followed by command-line overrides.

    `recipe.py config.json --fold 3 --learning_rate 2e-5` takes every value from the file except the
    ones given after it. `defaults` are the recipe's own defaults (e.g. the metric that picks the best
    checkpoint); the user's values win over them in every form.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(dataclass_types)
    if argv and argv[0].endswith((".json", ".yaml", ".yml")):
        path = Path(argv[0])
        with path.open() as handle:
            values = json.load(handle) if path.suffix == ".json" else yaml.safe_load(handle)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of argument names to values")
        known = {
            field.name for dataclass_type in dataclass_types for field in dataclasses.fields(dataclass_type)
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown argument(s) {unknown}; `--help` lists the accepted ones")
        if len(argv) == 1:
            return parser.parse_dict({**defaults, **values})
        defaults, argv = {**defaults, **values}, argv[1:]
    parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(args=argv)


__all__ = [
    "ModelArguments",
    "DataArguments",
    "IemocapArguments",
    "ManifestArguments",
    "RECIPE_TRAINING_DEFAULTS",
    "parse_recipe_arguments",
]
