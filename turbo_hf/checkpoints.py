"""Checkpoints a run can go on from: what a complete `checkpoint-N` folder holds, the newest complete one
of an output folder (what `--resume_from_checkpoint last` resumes), the error of a save that did not
finish, and the up-front check that the output folder can be written at all.

The Trainer writes a checkpoint file by file straight into `checkpoint-N` (weights, optimizer,
scheduler, RNG states, then `trainer_state.json`), so a full disk or a kill part-way leaves a folder
that has the right name and cannot be resumed from. Nothing here loads a pickle: torch files are
checked by their zip directory, safetensors files by their header.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import zipfile

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

logger = logging.get_logger(__name__)

_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
TRAINER_STATE_FILE = "trainer_state.json"
# Written unless `save_only_model` (or DeepSpeed / FSDP, which save the optimizer their own way).
OPTIMIZER_FILES = ("optimizer.pt", "scheduler.pt")
_WEIGHTS_INDEX = "model.safetensors.index.json"
_TORCH_FILE_SUFFIXES = (".pt", ".pth", ".bin")


class IncompleteCheckpointError(ValueError):
    """A checkpoint folder lacks a file a resume reads, or holds a truncated or unreadable one."""


class CheckpointSaveError(OSError):
    """Saving a checkpoint failed part-way (a full disk, most often); the message names the folder and
    the free space of its disk, and the original error is the cause."""


def checkpoint_folders(output_dir: str | os.PathLike) -> list[str]:
    """The `checkpoint-N` folders of `output_dir`, newest (largest N) first; none if it does not exist."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT_NAME.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isdir(path):
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def _tensor_entries(handle, header_size: int) -> dict[str, dict]:
    """The tensor entries (dtype, shape, data_offsets) of a safetensors header of `header_size` bytes,
    read from `handle` after its 8-byte size prefix."""
    header = json.loads(handle.read(header_size))
    return {key: entry for key, entry in header.items() if key != "__metadata__"}


def _safetensors_problems(path: str) -> list[str]:
    name = os.path.basename(path)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return [f"{name} is truncated ({size} bytes, shorter than a safetensors header)"]
        header_size = int.from_bytes(prefix, "little")
        if 8 + header_size > size:
            return [f"{name} is truncated ({size} bytes; its header alone claims {8 + header_size})"]
        try:
            ends = [entry["data_offsets"][1] for entry in _tensor_entries(handle, header_size).values()]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return [f"{name} has no readable safetensors header"]
    expected = 8 + header_size + max(ends, default=0)
    if size != expected:
        return [f"{name} is truncated or damaged ({size} bytes; its header describes {expected})"]
    return []


def _torch_file_problems(path: str) -> list[str]:
    # torch.save writes a zip whose directory comes last: a file cut short has none.
    if zipfile.is_zipfile(path):
        return []
    return [f"{os.path.basename(path)} is truncated (no zip directory at its end, as torch.save writes)"]


def _weights_problems(folder: str) -> list[str]:
    index = os.path.join(folder, _WEIGHTS_INDEX)
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as handle:
                shards = sorted(set(json.load(handle)["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            return [f"{_WEIGHTS_INDEX} does not parse"]
        missing = [shard for shard in shards if not os.path.isfile(os.path.join(folder, shard))]
        return [f"weights shard {shard} is missing" for shard in missing]
    if not any(name.endswith(".safetensors") for name in os.listdir(folder)):
        return ["no model weights (model.safetensors)"]
    return []


def check_checkpoint(folder: str | os.PathLike, expect_optimizer: bool = True) -> None:
    """Raise `IncompleteCheckpointError` naming every problem unless `folder` can be resumed from.

    Complete means: `trainer_state.json` exists and parses (the Trainer writes it last), the model
    weights exist and every safetensors file's size matches its header, every torch file (`*.pt`,
    `*.pth`, `*.bin`) is a whole zip, and with `expect_optimizer` `optimizer.pt` and `scheduler.pt`
    exist. Reads headers and zip directories only: a few KB per file.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise IncompleteCheckpointError(f"checkpoint {folder} is not a folder")
    problems = []
    state = os.path.join(folder, TRAINER_STATE_FILE)
    if not os.path.isfile(state):
        problems.append(f"no {TRAINER_STATE_FILE}")
    else:
        try:
            with open(state, encoding="utf-8") as handle:
                if not isinstance(json.load(handle), dict):
                    raise ValueError
        except (ValueError, UnicodeDecodeError):
            problems.append(f"{TRAINER_STATE_FILE} does not parse")
    problems += _weights_problems(folder)
    if expect_optimizer:
        missing = [name for name in OPTIMIZER_FILES if not os.path.isfile(os.path.join(folder, name))]
        problems += [f"no {name}" for name in missing]
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and name.endswith(".safetensors"):
            problems += _safetensors_problems(path)
        elif os.path.isfile(path) and name.endswith(_TORCH_FILE_SUFFIXES):
            problems += _torch_file_problems(path)
    if problems:
        raise IncompleteCheckpointError(f"checkpoint {folder} is incomplete: {'; '.join(problems)}")


# Entries of a saved config that record where or how it was saved, not what the model is (the Trainer
# turns use_cache off while it trains).
_NOT_SETTINGS = frozenset(
    {"transformers_version", "architectures", "dtype", "torch_dtype", "output_attentions", "use_cache"}
)


def _flat_settings(values: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in values.items():
        if key.startswith("_") or key in _NOT_SETTINGS:
            continue
        if isinstance(value, dict) and key.endswith("_config"):
            flat.update(_flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _config_differences(folder: str, config) -> dict[str, tuple[object, object]]:
    """`name -> (checkpoint's value, this run's)` for every setting the two model configs hold
    differently (sub-config fields as `text_config.hidden_size`); none if the checkpoint has no
    readable config.json."""
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            saved = type(config).from_dict(json.load(handle)).to_dict()
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        logger.warning("cannot compare %s with this run's model config: %s", path, err)
        return {}
    before, now = _flat_settings(saved), _flat_settings(config.to_dict())
    return {
        name: (before.get(name), now.get(name))
        for name in sorted(set(before) | set(now))
        if before.get(name) != now.get(name)
    }


def _saved_shapes(folder: str) -> dict[str, list[int]]:
    """The shape of every tensor in the folder's safetensors files, read from their headers."""
    shapes = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with open(os.path.join(folder, name), "rb") as handle:
                entries = _tensor_entries(handle, int.from_bytes(handle.read(8), "little"))
            shapes.update({key: entry["shape"] for key, entry in entries.items()})
    return shapes


def _settings(differences: dict[str, tuple[object, object]], side: int) -> str:
    return ", ".join(f"{name}={values[side]!r}" for name, values in differences.items())


def check_checkpoint_matches_model(folder: str | os.PathLike, model) -> None:
    """Compare the model config a checkpoint was written with (its config.json) with `model`'s before the
    Trainer loads it. Weights of other shapes (or missing ones) are a `ValueError` that names the config
    fields that differ, instead of torch's list of size mismatches; settings that leave the weights as
    they are (a temperature, a loss mode) are named in a warning, and the run resumes."""
    folder = os.fspath(folder)
    differences = _config_differences(folder, model.config)
    saved = _saved_shapes(folder)
    here = {name: list(tensor.shape) for name, tensor in model.state_dict().items()}
    mismatched = [name for name in here if name in saved and saved[name] != here[name]]
    missing = [name for name in here if name not in saved]
    name = os.path.basename(os.path.normpath(folder))
    if differences:
        what = (
            f"{name} was written by a model with {_settings(differences, 0)}; this run builds "
            f"{_settings(differences, 1)}"
        )
    else:
        what = f"{name} holds weights of another model than this run builds"
    if mismatched or missing:
        tensors = [f"{key} is {saved[key]} there and {here[key]} here" for key in mismatched[:2]]
        tensors += [f"{key} is not there" for key in missing[:2]]
        more = len(mismatched) + len(missing) - len(tensors)
        detail = "; ".join(tensors) + (f"; and {more} more" if more > 0 else "")
        raise ValueError(f"{what}: resume with the same settings, or start a new --output_dir ({detail})")
    if differences:
        logger.warning(
            "%s: resuming, but the run goes on with settings other than the ones it started with; resume "
            "with the same settings to continue that run as it was",
            what,
        )


def newest_complete_checkpoint(output_dir: str | os.PathLike, expect_optimizer: bool = True) -> str | None:
    """The newest `checkpoint-N` of `output_dir` that `check_checkpoint` accepts, or None if there is no
    checkpoint folder at all. Newer incomplete ones are skipped and named, with why, in a warning; if
    every folder is incomplete, an `IncompleteCheckpointError` lists them."""
    skipped = []
    for folder in checkpoint_folders(output_dir):
        try:
            check_checkpoint(folder, expect_optimizer)
        except IncompleteCheckpointError as err:
            skipped.append(str(err))
            continue
        if skipped:
            logger.warning(
                "skipping %d incomplete checkpoint(s) (an interrupted save, or a full disk?): %s. Resuming "
                "from the newest complete one, %s",
                len(skipped),
                " | ".join(skipped),
                folder,
            )
        return folder
    if skipped:
        raise IncompleteCheckpointError(
            f"no complete checkpoint in {output_dir} to resume from: {' | '.join(skipped)}. Delete these "
            "folders to start afresh"
        )
    return None


def _free_space(path: str) -> str:
    try:
        usage = shutil.disk_usage(path)
    except OSError as err:
        return f"free space on its disk unknown ({err})"
    return f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**30:.1f} GiB on its disk"


def checkpoint_save_error(folder: str, error: BaseException, removed: bool) -> CheckpointSaveError:
    """The error to raise (from `error`) when saving `folder` failed part-way."""
    full = isinstance(error, OSError) and error.errno == errno.ENOSPC
    # torch's zip writer reports a full disk as "[enforce fail at inline_container.cc] ... unexpected pos".
    full = full or "unexpected pos" in str(error)
    what = "the disk is full" if full else "the save failed"
    left = (
        f"the incomplete {os.path.basename(folder)} was removed, so --resume_from_checkpoint last goes on "
        "from the newest complete checkpoint"
        if removed
        else f"{folder} is incomplete; --resume_from_checkpoint last skips it"
    )
    return CheckpointSaveError(
        f"saving checkpoint {folder} failed ({what}: {type(error).__name__}: {error}); "
        f"{_free_space(os.path.dirname(folder) or '.')}. {left}. Free some space (or lower "
        "--save_total_limit, or pick an --output_dir on another disk) and resume."
    )


def check_output_dir_writable(output_dir: str | os.PathLike) -> None:
    """Create `output_dir` if missing and write (then remove) a probe file in it: a folder that cannot be
    written is a `ValueError` naming it before training, not at the first checkpoint an epoch later."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".turbo_hf_write_probe_"):
            pass
    except OSError as err:
        raise ValueError(
            f"output_dir {output_dir} is not writable ({err.strerror or err}): checkpoints and the trained "
            "model are saved there; pick a folder you can write to (--output_dir)"
        ) from err


__all__ = [
    "CheckpointSaveError",
    "IncompleteCheckpointError",
    "check_checkpoint",
    "check_checkpoint_matches_model",
    "check_output_dir_writable",
    "checkpoint_folders",
    "checkpoint_save_error",
    "newest_complete_checkpoint",
]
