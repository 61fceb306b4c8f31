"""Splits: reading split names, keeping some splits of a manifest, and the one stratified split
(IEMOCAP's session-protocol validation and a manifest's held-out validation both use it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import DatasetDict
from transformers.utils import logging

from ..configuration_rules import closest
from .manifest_files import ManifestError

logger = logging.get_logger(__name__)

_SPLIT_ALIASES = {"dev": "validation", "valid": "validation", "val": "validation"}
SPLIT_ORDER = ("train", "validation", "test")


def _split_word(value: str) -> str:
    """Lower-cased word with dev / valid / val read as validation; ValueError if not a word."""
    name = value.strip().lower()
    if not re.fullmatch(r"\w+", name):
        raise ValueError(f"split {value!r} is not a split name (train, validation, test)")
    return _SPLIT_ALIASES.get(name, name)


def normalize_split_name(value: str) -> str:
    """train, validation or test, case-insensitive, with dev / valid / val read as validation.

    Any other value is a ValueError naming the closest accepted name: 'trian' or 'training' would
    otherwise become a split of its own, which training never reads and `splits=` never reports.
    """
    name = _split_word(value)
    if name not in SPLIT_ORDER:
        accepted = [*SPLIT_ORDER, *_SPLIT_ALIASES]
        close = closest(value.strip().lower(), accepted)
        hint = f" (closest: {close!r})" if close else ""
        raise ValueError(
            f"split {value!r} is not a split name; expected train, validation (or dev / valid / val) "
            f"or test{hint}"
        )
    return name


def wanted_splits(
    path: Path, splits: str | Sequence[str] | None, split_column: str | None, columns: list[str]
) -> tuple[str, ...] | None:
    """The split names to keep, normalised as the split column's values are; None keeps every row."""
    if splits is None:
        return None
    names = (splits,) if isinstance(splits, str) else tuple(splits)
    if not names:
        raise ManifestError(f"{path}: splits must name at least one split, or be None to keep every row")
    try:
        # Only a word, not a known name: an unknown one then fails as "no rows of split(s) [...]",
        # which lists the splits the manifest has.
        wanted = tuple(dict.fromkeys(_split_word(str(name)) for name in names))
    except ValueError as err:
        raise ManifestError(f"{path}: splits: {err}") from err
    if split_column is None:
        raise ManifestError(f"{path}: splits={list(names)} needs a split_column")
    if split_column not in columns:
        raise ManifestError(
            f"{path}: cannot keep split(s) {list(wanted)}: the manifest has no {split_column!r} column "
            f"(found columns {columns})"
        )
    return wanted


def select_splits(
    path: Path,
    rows: list[tuple[int, Any]],
    split_column: str,
    label_column: str | None,
    wanted: tuple[str, ...],
) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """The (line, row) pairs of the wanted splits, and the (line, label) of the others' labelled rows.

    Runs before any row check, so that a broken file of another split is neither an error nor a
    reported skip. A row whose split cannot be read (a malformed line, an odd split value) is kept:
    it may belong to a wanted split, so the row checks report it.
    """
    selected, other_labels, found = [], [], set()
    for line, row in rows:
        try:
            name = normalize_split_name(row.get(split_column) or "") if isinstance(row, dict) else None
        except ValueError:
            name = None
        if name is not None:
            found.add(name)
        if name is None or name in wanted:
            selected.append((line, row))
        elif label_column is not None and (row.get(label_column) or "").strip():
            other_labels.append((line, row[label_column].strip()))
    absent = [name for name in wanted if name not in found]
    if absent:
        raise ManifestError(
            f"{path}: no rows of split(s) {absent}; the manifest's splits are {sorted(found)}"
        )
    return selected, other_labels


def check_fraction(fraction: Any, name: str = "validation_fraction") -> float:
    """`fraction` as a float in (0, 1): TypeError if it is not a real number (a bool, a string),
    ValueError if it is out of range or nan."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in (0, 1), got {fraction!r} ({type(fraction).__name__})")
    if not 0 < fraction < 1:  # also refuses nan
        raise ValueError(f"{name} must be in (0, 1), got {fraction}")
    return float(fraction)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) row indices, holding out round(`fraction` x count) rows of every class, seeded.

    ValueError when either side would have no row (too few rows per class for `fraction`), giving
    the per-class counts (named by `class_names` where given).
    """
    fraction = check_fraction(fraction)
    rng = np.random.default_rng(seed)
    held_out, counts = [], {}
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        counts[class_names[label] if class_names is not None else label.item()] = len(rows)
        count = int(round(fraction * len(rows)))
        if count:
            held_out.append(rng.permutation(rows)[:count])
    held = np.sort(np.concatenate(held_out)) if held_out else np.array([], dtype=int)
    kept = np.setdiff1d(np.arange(len(labels)), held)
    for name, rows in (("validation", held), ("train", kept)):
        if len(rows) == 0:
            # round(fraction x count) per class: 0 everywhere, or the whole of every class.
            raise ValueError(
                f"{name} would have 0 rows: validation_fraction {fraction} of {len(labels)} rows "
                f"(per class: {counts}) rounds to {'0' if name == 'validation' else 'every row'} in every "
                "class; choose a fraction that leaves rows on both sides"
            )
    return kept, held


def with_validation_split(splits: DatasetDict, fraction: float | None, seed: int, source: str) -> DatasetDict:
    """`splits` with a stratified validation split carved out of train when it has none and `fraction`
    asks for one; `source` (the manifest) names the data in errors."""
    if "validation" in splits:
        if fraction is not None:
            raise ValueError(
                f"{source} has validation rows; --validation_fraction only applies to a manifest without them"
            )
        return splits
    if fraction is None:
        raise ValueError(
            f"{source} has no validation rows (splits: {sorted(splits)}); mark some rows 'validation', "
            "or pass --validation_fraction 0.1 to hold out part of train"
        )
    if "train" not in splits:
        raise ValueError(
            f"{source} has no train rows (splits: {sorted(splits)}): there is nothing to hold a validation "
            "split out of"
        )
    train = splits["train"]
    label_feature = train.features.get("label")
    names = getattr(label_feature, "names", None)
    kept, held = stratified_split(np.asarray(train["label"]), fraction, seed, class_names=names)
    logger.info(
        "validation: %d of the %d training rows (%.0f%%, stratified by label, seed %d)",
        len(held),
        len(train),
        100 * fraction,
        seed,
    )
    return DatasetDict({**splits, "train": train.select(kept), "validation": train.select(held)})


__all__ = [
    "SPLIT_ORDER",
    "check_fraction",
    "normalize_split_name",
    "stratified_split",
    "with_validation_split",
]
