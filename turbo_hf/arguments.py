"""The recipes' arguments: the argument groups beside TurboTrainingArguments, and reading them from
the command line or from a .json / .yaml file followed by command-line overrides."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, PreTrainedConfig, TrainingArguments
from transformers.utils import logging

from .argument_files import read_argument_file, typed_file_values
from .audio import check_max_duration
from .configuration_rules import check_turbo_field
from .configuration_turbo import TurboConfig
from .data.manifest import ManifestOptions

logger = logging.get_logger(__name__)


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
    sessions: list[int] = field(
        default_factory=lambda: [1, 2, 3, 4, 5],
        metadata={
            "help": "The sessions to load (default all five). A missing Session folder is an error unless "
            "it is left out here on purpose: the folds then cover the sessions given."
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


def _given_on_command_line(parser: HfArgumentParser, argv: list[str]) -> dict[str, Any]:
    """The arguments `argv` sets, by field name, as the command line reads them (defaults left out)."""
    given = argparse.ArgumentParser(add_help=False, allow_abbrev=parser.allow_abbrev)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            # Values stay strings and nothing is required: the recipe's parser reports bad values.
            kept = given._add_action(copy.copy(action))
            kept.default, kept.type, kept.choices, kept.required = argparse.SUPPRESS, None, None, False
    namespace, _ = given.parse_known_args(argv)
    return vars(namespace)


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value))


def _defaults_that_fit(
    defaults: dict[str, Any], given: dict[str, Any], training_type: type
) -> dict[str, Any]:
    """The recipe's `defaults` where they fit what the user `given`: keeping the best checkpoint by
    validation (the recipes' default) needs evaluations and checkpoints at matching times. With
    evaluation or saving turned off it gives way (with a note); with mismatched strategies the error
    says which value is the recipe's default and how to turn it off, rather than transformers' words
    about a flag the user never passed."""
    if not defaults.get("load_best_model_at_end") or "load_best_model_at_end" in given:
        return defaults
    fields = {field.name: field.default for field in dataclasses.fields(training_type)}

    def final(name: str) -> tuple[str, str]:
        if name in given:
            return _strategy(given[name]), ""
        return _strategy(defaults.get(name, fields[name])), " (the recipe's default)"

    (eval_strategy, eval_source), (save_strategy, save_source) = (
        final("eval_strategy"),
        final("save_strategy"),
    )
    if "no" in (eval_strategy, save_strategy):
        turned_off = "eval_strategy" if eval_strategy == "no" else "save_strategy"
        logger.warning(
            "--%s no: the recipe's default load_best_model_at_end=True (keep the checkpoint with the best "
            "validation metric) is turned off, and no checkpoint is selected by a metric: the model saved is "
            "the one of the last step",
            turned_off,
        )
        fitted = {**defaults, "load_best_model_at_end": False}
        if "metric_for_best_model" not in given:
            fitted.pop("metric_for_best_model", None)
        return fitted
    if save_strategy not in (eval_strategy, "best"):
        raise ValueError(
            f"--eval_strategy {eval_strategy}{eval_source} and --save_strategy {save_strategy}{save_source} "
            "differ, but keeping the best validation checkpoint (load_best_model_at_end=True (the recipe's "
            f"default)) needs them to match: pass --save_strategy {eval_strategy} as well, or "
            "--load_best_model_at_end false to keep the last step's model"
        )
    return defaults


def parse_recipe_arguments(dataclass_types: tuple, defaults: dict[str, Any], argv: list[str] | None = None):
    """Parse the command line, or a .json / .yaml file optionally followed by command-line overrides.

    `recipe.py config.json --fold 3 --learning_rate 2e-5` takes every value from the file except the
    ones given after it. `defaults` are the recipe's own defaults (e.g. the metric that picks the best
    checkpoint); the user's values win over them in every form. A file's values are checked against
    their fields' types (and converted, as the command line reads a string), with errors naming the
    file and the key.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(dataclass_types)
    file_values: dict[str, Any] = {}
    if argv and argv[0].endswith((".json", ".yaml", ".yml")):
        path = Path(argv[0])
        file_values = read_argument_file(path)
        known = {
            field.name for dataclass_type in dataclass_types for field in dataclasses.fields(dataclass_type)
        }
        unknown = sorted(set(file_values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown argument(s) {unknown}; `--help` lists the accepted ones")
        file_values = typed_file_values(path, file_values, parser, dataclass_types)
        argv = argv[1:]
    given = {**file_values, **_given_on_command_line(parser, argv)}
    training_type = next((kind for kind in dataclass_types if issubclass(kind, TrainingArguments)), None)
    if training_type is not None:
        defaults = _defaults_that_fit(defaults, given, training_type)
    defaults = {**defaults, **file_values}
    if file_values and not argv:
        return parser.parse_dict(defaults)
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
