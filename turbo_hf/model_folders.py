"""Checks of a saved model or processor folder before transformers reads it.

transformers takes a path it cannot find for a hub id ("Repo id must be in the form ..."), builds a
default config where a folder has no config.json, reports a truncated safetensors file without its
name and, where the tokenizer files are missing, builds a tokenizer with an empty vocabulary or
blames sentencepiece. These checks name the folder and the file instead. Hub ids are left to the hub
loader: only a path that exists, or that cannot be a hub id, is taken as a local folder.

After the weights are read, `check_loading_info` turns what transformers only logs (tensors missing
from the file or not in the model: a randomly initialised classifier or encoder) and what it raises
with a pointer to its log (tensors of another shape) into one error naming the file, the tensors and
the config field that explains them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import transformers
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open

CONFIG_FILE = "config.json"
# TurboConfig.model_type; here, so that the CLI can check a folder without importing torch.
TURBO_MODEL_TYPE = "turbo"
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
_TOKENIZER_CONFIG = "tokenizer_config.json"
_TOKENIZER_FILE = "tokenizer.json"
_WEIGHTS_PATTERN = "model*.safetensors"
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# What transformers reads, in the order it prefers them.
_WEIGHT_FILES = ("model.safetensors", _SHARD_INDEXES[0], "pytorch_model.bin", _SHARD_INDEXES[1])
_FILES_SHOWN = 12
_TENSORS_SHOWN = 4
# Top-level modules of TurboForAudioTextClassification -> the config field that sizes them.
_PROJECTIONS = ("audio_projection.", "text_projection.")
_ENCODERS = {
    "audio_model.": ("audio_config", "audio encoder"),
    "text_model.": ("text_config", "text encoder"),
}


def local_folder(name_or_path: str | os.PathLike, subfolder: str = "", what: str = "model") -> Path | None:
    """The local folder `name_or_path` (+ `subfolder`) names, or None for a hub id or a file.

    A path that does not exist and cannot be a hub id (`./run`, `/data/run`, `runs/a/b`, `C:\\run`) is
    a FileNotFoundError naming it: "`what` folder not found: <path>".
    """
    name = os.fspath(name_or_path)
    if os.path.isfile(name):
        return None
    if os.path.isdir(name):
        return Path(name, subfolder) if subfolder else Path(name)
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise FileNotFoundError(f"{what} folder not found: {name}") from None
    return None


def check_model_folder(
    name_or_path: str | os.PathLike, subfolder: str = "", needs_config: bool = True
) -> None:
    """Before loading a saved model: a local folder exists, holds config.json (unless the config comes
    from elsewhere) and only complete safetensors weights. Hub ids are not checked."""
    folder = local_folder(name_or_path, subfolder)
    if folder is not None:
        if needs_config:
            check_config_file(folder)
        check_weight_files(folder)


def check_config_file(folder: Path, model_type: str = TURBO_MODEL_TYPE) -> None:
    """A saved model folder holds config.json (transformers would otherwise build a default model), and
    it is a JSON object of a `model_type` config (see `check_config_dict`)."""
    _require(folder, [(CONFIG_FILE,)], "a saved model folder holds config.json, as save_pretrained writes it")
    path = folder / CONFIG_FILE
    try:
        config_dict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise OSError(f"{path} is not valid JSON ({err})") from None
    check_config_dict(config_dict, path, model_type)


def check_config_dict(config_dict: Any, path: str | os.PathLike, model_type: str = TURBO_MODEL_TYPE) -> None:
    """What a config file `path` holds is a JSON object with `model_type` and, where given, label maps
    that are objects and a num_labels that counts id2label. transformers would fail on these with an
    AttributeError from deep inside, or load another family's config.json as this one's."""
    if not isinstance(config_dict, dict):
        raise OSError(
            f"{path} holds {_json_kind(config_dict)}, not a JSON object of config fields (as save_pretrained "
            "writes it)"
        )
    found = config_dict.get("model_type")
    if found != model_type:
        has = f"has model_type {found!r}" if "model_type" in config_dict else "has no model_type"
        raise ValueError(
            f"not a Turbo model: {path} {has} (expected {model_type!r}); TurboForAudioTextClassification "
            "loads what its save_pretrained wrote (pretrained encoders: from_encoders_pretrained)"
        )
    for name, maps in (("id2label", "class ids to names"), ("label2id", "names to class ids")):
        value = config_dict.get(name)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{path}: {name} must be an object mapping {maps}, got {_json_kind(value)}")
    id2label, num_labels = config_dict.get("id2label"), config_dict.get("num_labels")
    if isinstance(id2label, dict) and num_labels is not None and num_labels != len(id2label):
        # transformers only warns, then keeps one of the two: the classifier no longer fits the weights.
        raise ValueError(
            f"{path}: num_labels={num_labels!r} but id2label names {len(id2label)} classes; remove num_labels "
            "or make id2label (and label2id) name that many classes"
        )


def check_weight_files(folder: Path) -> None:
    """Every model*.safetensors file in `folder` has a complete header (a truncated or foreign file
    is an OSError naming it, not a SafetensorError naming nothing), and a shard index is a JSON object
    whose weight_map maps tensor names to shard files (transformers fails on it naming nothing)."""
    for index in _SHARD_INDEXES:
        if (folder / index).is_file():
            _check_shard_index(folder / index)
    for path in sorted(folder.glob(_WEIGHTS_PATTERN)):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise OSError(
                f"{path} is not a complete safetensors file ({err}): it may be truncated or not written by "
                "save_pretrained; save the model again or copy the file anew"
            ) from None


def _check_shard_index(path: Path) -> None:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise OSError(f"{path} is not valid JSON ({err}); save the model again") from None
    if not isinstance(index, dict):
        raise OSError(
            f"{path} holds {_json_kind(index)}, not a JSON object with a weight_map (as save_pretrained writes it)"
        )
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise OSError(
            f"{path} weight_map must map tensor names to shard file names, got {_json_kind(weight_map)}; "
            "save the model again"
        )


def weights_description(name_or_path: str | os.PathLike, subfolder: str = "") -> str:
    """How an error names the weights transformers read for `name_or_path`: the file of a local folder
    (the shard index for sharded weights), or the repository's weights."""
    folder = local_folder(name_or_path, subfolder)
    if folder is None:
        return f"the weights of {os.fspath(name_or_path)}"
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return (
                str(folder / name)
                if name.endswith(("safetensors", "bin"))
                else f"the shards of {folder / name}"
            )
    return f"the weights in {folder}"


def check_loading_info(
    info: dict, weights: str, config_file: str, config: Any, allow_mismatched: bool
) -> None:
    """Raise where the weights read (`info`, transformers' `output_loading_info`) do not fill the model:
    an encoder config of another family (ValueError), tensors of another shape unless
    `allow_mismatched` (ValueError naming the config field), tensors missing or left over (OSError).
    `weights` and `config_file` are how the error names what was read."""
    missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
    for prefix, (field, encoder) in _ENCODERS.items():
        lost = [name for name in missing if name.startswith(prefix)]
        foreign = [name for name in unexpected if name.startswith(prefix)]
        if lost and foreign:
            model_type = getattr(config, field).model_type
            raise ValueError(
                f"{config_file} {field} is {model_type} but {weights} holds the tensors of another {encoder}: "
                f"{len(lost)} missing ({_first(lost)}), {len(foreign)} unexpected ({_first(foreign)}); "
                f"use the {field} saved with these weights"
            )
    mismatched = sorted((name, tuple(saved), tuple(built)) for name, saved, built in info["mismatched_keys"])
    if mismatched and not allow_mismatched:
        shown = ", ".join(
            f"{name} (checkpoint {saved}, model {built})"
            for name, saved, built in mismatched[:_TENSORS_SHOWN]
        )
        more = ", ..." if len(mismatched) > _TENSORS_SHOWN else ""
        raise ValueError(
            f"{weights} does not fit the model {config_file} describes: {_count(mismatched)} of another shape: "
            f"{shown}{more}; {_mismatch_cause(mismatched, config)}. To replace them with new, untrained "
            "tensors on purpose (a new head), pass ignore_mismatched_sizes=True"
        )
    if missing:
        raise OSError(
            f"{weights} lacks {_count(missing)} of the model: {_first(missing)}; these would be random: "
            "save the model again with save_pretrained, or restore the file"
        )
    if unexpected:
        raise OSError(
            f"{weights} holds {_count(unexpected)} the model does not have: {_first(unexpected)}; it was not "
            f"written for the model {config_file} describes"
        )


def _mismatch_cause(mismatched: list[tuple[str, tuple, tuple]], config: Any) -> str:
    """The config fields that size the mismatched tensors, with their values."""
    causes = []
    for name, saved, built in mismatched:
        rows_differ = saved[:1] != built[:1]  # a Linear's output size; its input size is the second
        if name.startswith("classifier.") and rows_differ:
            cause = f"num_labels (id2label) is {config.num_labels}, the checkpoint's classifier has {saved[0]} classes"
        elif name.startswith("classifier.") or (name.startswith(_PROJECTIONS) and rows_differ):
            # The classifier reads both projections, concatenated.
            saved_dim = saved[1] // 2 if name.startswith("classifier.") else saved[0]
            cause = f"projection_dim is {config.projection_dim}, the checkpoint's is {saved_dim}"
        else:
            prefix = "audio_" if name.startswith(("audio_model.", "audio_projection.")) else "text_"
            sub_config = getattr(config, f"{prefix}config")
            cause = (
                f"{prefix}config.hidden_size is {getattr(sub_config, 'hidden_size', None)} "
                f"(or another {prefix}config size differs)"
            )
        if cause not in causes:
            causes.append(cause)
    return "in the config, " + "; ".join(causes)


def _first(names: list[str]) -> str:
    return ", ".join(names[:_TENSORS_SHOWN]) + (", ..." if len(names) > _TENSORS_SHOWN else "")


def _count(names: list) -> str:
    return f"{len(names)} tensor{'' if len(names) == 1 else 's'}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {
        bool: "true/false",
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        dict: "an object",
    }
    return kinds.get(type(value), type(value).__name__)


def check_processor_folder(folder: Path) -> None:
    """A saved TurboProcessor folder: its processor config, tokenizer config and tokenizer files."""
    saved_by = "a TurboProcessor folder holds them as TurboProcessor.save_pretrained writes them"
    _require(folder, [_PROCESSOR_FILES, (_TOKENIZER_CONFIG,)], saved_by)
    if (folder / _TOKENIZER_FILE).is_file():
        return
    # Without tokenizer.json a slow tokenizer is built from its vocabulary files; with those missing
    # too, transformers builds one that knows only its special tokens (or blames sentencepiece).
    vocabulary = _vocabulary_files(folder / _TOKENIZER_CONFIG)
    missing = [name for name in vocabulary if not (folder / name).is_file()]
    if missing or not vocabulary:
        alternative = f" (or the vocabulary files {', '.join(vocabulary)})" if vocabulary else ""
        raise FileNotFoundError(
            f"{folder}: the tokenizer files are missing: {_TOKENIZER_FILE}{alternative}; {saved_by}"
        )


def _vocabulary_files(tokenizer_config: Path) -> list[str]:
    """The files the slow tokenizer class named in tokenizer_config.json reads (empty if unknown)."""
    try:
        name = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError) as err:
        raise OSError(f"{tokenizer_config} is not a readable JSON object ({err})") from None
    tokenizer_class = getattr(transformers, name, None) if isinstance(name, str) else None
    names = getattr(tokenizer_class, "vocab_files_names", None) or {}
    return [file for key, file in names.items() if key != "tokenizer_file"]


def _require(folder: Path, groups: list[tuple[str, ...]], saved_by: str) -> None:
    """Each group of file names needs one of them in `folder`."""
    missing = [" or ".join(group) for group in groups if not any((folder / name).is_file() for name in group)]
    if missing:
        present = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
        shown = present[:_FILES_SHOWN] + (["..."] if len(present) > _FILES_SHOWN else [])
        raise FileNotFoundError(
            f"{folder}: missing {', '.join(missing)} ({saved_by}; the folder holds {shown})"
        )


__all__ = [
    "TURBO_MODEL_TYPE",
    "local_folder",
    "check_model_folder",
    "check_config_file",
    "check_config_dict",
    "check_weight_files",
    "check_loading_info",
    "weights_description",
    "check_processor_folder",
]
