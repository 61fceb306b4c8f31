"""The recipes' arguments: the argument groups beside TurboTrainingArguments, and reading them from
the command line or from a .json / .yaml file followed by command-line overrides."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser


@dataclass
class ModelArguments:
    """Encoders and Turbo hyper-parameters (they become the TurboConfig)."""

    audio_model_name_or_path: str = field(
        default="facebook/wav2vec2-base", metadata={"help": "Audio encoder: hub id or local folder."}
    )
    text_model_name_or_path: str = field(
        default="bert-base-uncased", metadata={"help": "Text encoder: hub id or local folder."}
    )
    loss_mode: str = field(default="turbo", metadata={"help": "turbo | cross | vanilla | in_modal."})
    ce_weight: float = field(
        default=0.5, metadata={"help": "lambda: loss = lambda*CE + (1-lambda)*contrastive."}
    )
    temperature: float = field(default=0.05, metadata={"help": "tau of InfoNCE."})
    projection_dim: int = field(default=256, metadata={"help": "Size of the joint audio-text space."})
    dropout: float = field(
        default=0.2, metadata={"help": "Dropout after projections, pushed into the encoders."}
    )
    text_pooling: str | None = field(
        default=None, metadata={"help": "cls | mean | last (default by encoder)."}
    )
    classify_on: str = field(
        default="first", metadata={"help": "first | both: views the classifier is trained on."}
    )
    # -- Whisper window, per-modality encoder dropout, feature norm, duplicate negatives (TurboConfig fields)
    audio_window: str = field(
        default="full",
        metadata={"help": "full | batch: Whisper's 30 s window, or the batch's longest clip (faster)."},
    )
    encoder_dropout: float | None = field(
        default=None,
        metadata={"help": "Dropout pushed into both encoders (0.2: the paper everywhere); -1 keeps theirs."},
    )
    audio_encoder_dropout: float | None = field(
        default=None,
        metadata={"help": "Audio encoder dropout (default: Whisper keeps its own 0, others `dropout`)."},
    )
    text_encoder_dropout: float | None = field(
        default=None, metadata={"help": "Text encoder dropout (default: `dropout`)."}
    )
    feature_norm: str | None = field(
        default=None, metadata={"help": "batch: batch-normalise pooled features before the projections."}
    )
    duplicate_negatives: str = field(
        default="keep",
        metadata={"help": "keep | mask: same-transcript rows are not negatives in text terms."},
    )
    # --
    freeze_feature_encoder: bool = field(
        default=False, metadata={"help": "Freeze the audio encoder's convolutional front end."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded encoders are stored."})
    model_revision: str | None = field(
        default=None, metadata={"help": "Revision of both encoders on the hub."}
    )

    def turbo_config_kwargs(self) -> dict[str, Any]:
        names = (
            "loss_mode",
            "ce_weight",
            "temperature",
            "projection_dim",
            "dropout",
            "text_pooling",
            "classify_on",
            "audio_window",
            "encoder_dropout",
            "audio_encoder_dropout",
            "text_encoder_dropout",
            "feature_norm",
            "duplicate_negatives",
        )
        return {name: getattr(self, name) for name in names}


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
            "help": "error | skip labelled utterances whose wav or transcript is missing or whose wav is "
            "not readable audio (skips are counted by reason and logged)."
        },
    )


@dataclass
class ManifestArguments:
    manifest: str = field(
        default=None, metadata={"help": "CSV, TSV or JSONL with audio, text, label, split."}
    )
    audio_column: str = field(default="audio", metadata={"help": "Column with the audio path."})
    text_column: str = field(default="text", metadata={"help": "Column with the transcript."})
    label_column: str = field(default="label", metadata={"help": "Column with the class."})
    split_column: str = field(default="split", metadata={"help": "Column naming train / validation / test."})
    labels: str | None = field(
        default=None,
        metadata={"help": "Comma-separated class names in index order (default: sorted values)."},
    )
    on_bad_row: str = field(
        default="raise",
        metadata={
            "help": "'raise': stop at the first bad row (missing or undecodable audio, unknown label, ...), "
            "naming its file line; 'skip': leave bad rows out, counted and logged with their lines."
        },
    )
    id_column: str | None = field(
        default="id", metadata={"help": "Column of utterance ids, if the manifest has one."}
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
