"""Checks of a saved model or processor folder before transformers reads it.

transformers takes a path it cannot find for a hub id ("Repo id must be in the form ..."), builds a
default config where a folder has no config.json, reports a truncated safetensors file without its
name and, where the tokenizer files are missing, builds a tokenizer with an empty vocabulary or
blames sentencepiece. These checks name the folder and the file instead. Hub ids are left to the hub
loader: only a path that exists, or that cannot be a hub id, is taken as a local folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import transformers
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open

CONFIG_FILE = "config.json"
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
_TOKENIZER_CONFIG = "tokenizer_config.json"
_TOKENIZER_FILE = "tokenizer.json"
_WEIGHTS_PATTERN = "model*.safetensors"
_FILES_SHOWN = 12


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


def check_config_file(folder: Path) -> None:
    """A saved model folder holds config.json (transformers would otherwise build a default model)."""
    _require(folder, [(CONFIG_FILE,)], "a saved model folder holds config.json, as save_pretrained writes it")


def check_weight_files(folder: Path) -> None:
    """Every model*.safetensors file in `folder` has a complete header (a truncated or foreign file
    is an OSError naming it, not a SafetensorError naming nothing)."""
    for path in sorted(folder.glob(_WEIGHTS_PATTERN)):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise OSError(
                f"{path} is not a complete safetensors file ({err}): it may be truncated or not written by "
                "save_pretrained; save the model again or copy the file anew"
            ) from None


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
    "local_folder",
    "check_model_folder",
    "check_config_file",
    "check_weight_files",
    "check_processor_folder",
]
