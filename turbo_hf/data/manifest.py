"""Generic manifest loader: a CSV, TSV or JSONL file listing audio, transcript and label per row.

Any audio+text classification task (device-directed speech, intent, emotion) can be described by
one such file. The loader checks every row where it is first seen, so a typo on line 8,123 is
reported as `manifest.csv:8123: ...` before training starts, not as a crash mid-epoch. Audio stays
a path (decoded lazily by `DataCollatorForAudioText`); only the file header is read, for `duration`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from ..audio import AudioDecodingError, audio_duration
from .manifest_files import DELIMITERS, ManifestError, read_rows

logger = logging.get_logger(__name__)

_SPLIT_ALIASES = {"dev": "validation", "valid": "validation", "val": "validation"}
_SPLIT_ORDER = ("train", "validation", "test")
_STANDARD_COLUMNS = ("id", "audio", "text", "label", "duration")
_MAX_REASONS_LOGGED = 5


class SkippedRow(NamedTuple):
    """A row left out with `on_bad_row="skip"`: its 1-based file line and why."""

    line: int
    reason: str


class _BadRow(Exception):
    """Internal: a row-level problem, raised or skipped according to `on_bad_row`."""


def normalize_split_name(value: str) -> str:
    """Lower-cased split name with dev / valid / val read as validation; not a word: a bad row."""
    name = value.strip().lower()
    if not re.fullmatch(r"\w+", name):
        raise _BadRow(f"split {value!r} is not a split name (train, validation, test)")
    return _SPLIT_ALIASES.get(name, name)


def _label_names(path: Path, values: list[tuple[int, str]], labels: Sequence[str] | None) -> list[str]:
    """ClassLabel names: `labels` as given, else the sorted distinct values of the (line, value) pairs.

    Inferred names sort numerically when all look like integers. A mix of integer-looking and other
    values (0, 1 and one 'yes') is most likely a typo that would silently become a class of its own,
    so it is an error naming the first line of the rarer kind, whatever `on_bad_row` says: that row is
    only odd relative to the others, and skipping it would quietly decide which kind was meant.
    """
    if labels is not None:
        return [str(name) for name in labels]
    is_integer = {value: re.fullmatch(r"-?\d+", value) is not None for _, value in values}
    if all(is_integer.values()):
        return sorted(is_integer, key=int)
    if any(is_integer.values()):
        integer_rows = sum(is_integer[value] for _, value in values)
        other_rows = len(values) - integer_rows
        # The rarer kind is the odd one; on a tie, the kind of the file's first label is the expected one.
        first_is_integer = is_integer[min(values)[1]]
        odd_is_integer = integer_rows < other_rows or (integer_rows == other_rows and not first_is_integer)
        line, value = min((line, value) for line, value in values if is_integer[value] == odd_is_integer)
        usual = sorted(name for name, integer in is_integer.items() if integer != odd_is_integer)
        raise ManifestError(
            f"{path}:{line}: label {value!r} {'looks like' if odd_is_integer else 'is not'} an integer, "
            f"unlike {other_rows if odd_is_integer else integer_rows} of the {len(values)} labels "
            f"(e.g. {usual[:_MAX_REASONS_LOGGED]}); fix the row, or pass labels=[...] to name every class "
            "in index order if the mix is meant"
        )
    return sorted(is_integer)


def _add_durations(
    kept: list[tuple[int, dict[str, Any]]], num_proc: int | None
) -> tuple[list[tuple[int, dict[str, Any]]], list[SkippedRow]]:
    """Each row's `duration` from its file header; a header that is not usable audio makes a bad row.

    Headers of 10,000 wav files take ~0.6 s serially from the page cache, and threads were slower
    there; threads (`num_proc`) pay off only on slow or network file systems.
    """
    paths = [record["audio"] for _, record in kept]
    if num_proc is not None and num_proc > 1:
        with ThreadPoolExecutor(max_workers=num_proc) as pool:
            durations = [future.result for future in [pool.submit(audio_duration, p) for p in paths]]
    else:
        durations = [partial(audio_duration, path) for path in paths]
    checked, problems = [], []
    for (line, record), duration in zip(kept, durations):
        try:
            record["duration"] = duration()
            checked.append((line, record))
        except AudioDecodingError as err:
            problems.append(SkippedRow(line, str(err)))
    return checked, problems


def _report(path: Path, problems: list[SkippedRow], on_bad_row: str, total: str) -> None:
    """Raise on the first bad row, or log one warning for all skipped rows."""
    if not problems:
        return
    problems.sort()
    first = "; ".join(f"{path.name}:{line}: {reason}" for line, reason in problems[:_MAX_REASONS_LOGGED])
    if on_bad_row == "raise":
        line, reason = problems[0]
        more = f" ({len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise ManifestError(f"{path}:{line}: {reason}{more}; pass on_bad_row='skip' to leave bad rows out")
    logger.warning(f"{path}: skipped {len(problems)} of {total}; first: {first}")


def load_manifest_with_report(
    path: str | os.PathLike,
    audio_column: str = "audio",
    text_column: str = "text",
    label_column: str | None = "label",
    labels: Sequence[str] | None = None,
    split_column: str | None = "split",
    id_column: str | None = "id",
    on_bad_row: str = "raise",
    compute_duration: bool = True,
    num_proc: int | None = None,
    line_column: str | None = None,
    splits: str | Sequence[str] | None = None,
    text_optional: bool = False,
) -> tuple[Dataset | DatasetDict, list[SkippedRow]]:
    """`load_manifest`, also returning the rows skipped with `on_bad_row="skip"` as (line, reason)."""
    if on_bad_row not in ("raise", "skip"):
        raise ValueError(f"on_bad_row must be 'raise' or 'skip', got {on_bad_row!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    columns, rows = read_rows(path)
    required = [audio_column, label_column] if text_optional else [audio_column, text_column, label_column]
    required = [name for name in required if name is not None]
    missing = [name for name in required if name not in columns]
    if missing:
        where = f"{path}:1" if path.suffix.lower() in DELIMITERS else str(path)  # the CSV / TSV header
        raise ManifestError(f"{where}: missing column(s) {missing}; found columns {columns}")
    if line_column is not None and line_column in columns:
        raise ManifestError(
            f"{path}: line_column {line_column!r} would replace the manifest's column of that name"
        )
    consumed = {audio_column, text_column, label_column, split_column, id_column}
    extras = [name for name in columns if name not in consumed and name not in _STANDARD_COLUMNS]
    ignored = [name for name in columns if name not in consumed and name in _STANDARD_COLUMNS]
    if ignored:
        # e.g. a `label` column when predicting with label_column=None, or a stale `duration`.
        logger.info(f"{path}: column(s) {ignored} are not used; the output's own columns replace them")
    if text_optional and text_column not in columns:
        logger.info(f"{path}: no {text_column!r} column; every row has an empty transcript (text_optional)")
    has_split = split_column is not None and split_column in columns
    wanted = _wanted_splits(path, splits, split_column, has_split, columns)
    label_set = None
    if label_column is not None and labels is not None:
        label_set = set(map(str, labels))
        if len(label_set) != len(labels):
            raise ValueError(f"labels must be distinct, got {list(labels)}")

    spec = _RowSpec(
        path=path,
        folder=path.resolve().parent,
        audio=audio_column,
        text=text_column,
        text_required=not text_optional,
        label=label_column,
        label_set=label_set,
        split=split_column if has_split else None,
        id=id_column,
        extras=extras,
    )
    other_labels: list[tuple[int, str]] = []
    if wanted is not None:
        rows, other_labels = _keep_splits(path, rows, spec, wanted)
    kept: list[tuple[int, dict[str, Any]]] = []
    problems: list[SkippedRow] = []
    for line, row in rows:
        try:
            if isinstance(row, str):
                raise _BadRow(row)
            record = _standard_row(row, line, spec)
            if line_column is not None:
                record[line_column] = line
            kept.append((line, record))
        except _BadRow as err:
            problems.append(SkippedRow(line, str(err)))

    if compute_duration:
        kept, unreadable = _add_durations(kept, num_proc)
        problems += unreadable
    scope = f" of split(s) {list(wanted)}" if wanted else ""
    _report(path, problems, on_bad_row, f"{len(rows)} rows{scope}")
    empty = [name for name in wanted or () if not any(record["split"] == name for _, record in kept)]
    if not kept or empty:
        which = f" of split(s) {empty}" if empty else ""
        raise ManifestError(
            f"{path}: no usable rows{which} ({len(rows)} read{scope}, {len(problems)} skipped)"
        )
    _warn_about_content(path, kept, expect_empty_text=text_optional)

    features = {"id": Value("string"), "audio": Value("string"), "text": Value("string")}
    if label_column is not None:
        # Other splits' labels count too, so that class ids do not depend on which splits are loaded.
        names = _label_names(path, [(line, record["label"]) for line, record in kept] + other_labels, labels)
        features["label"] = ClassLabel(names=names)
    if compute_duration:
        features["duration"] = Value("float64")
    features.update({name: Value("string") for name in extras})
    if line_column is not None:
        features[line_column] = Value("int64")
    return _build(kept, Features(features), has_split), problems


class _RowSpec(NamedTuple):
    """Where a manifest lives and which of its columns feed which output column."""

    path: Path
    folder: Path
    audio: str
    text: str
    text_required: bool
    label: str | None
    label_set: set[str] | None
    split: str | None
    id: str | None
    extras: list[str]


def _wanted_splits(
    path: Path,
    splits: str | Sequence[str] | None,
    split_column: str | None,
    has_split: bool,
    columns: list[str],
) -> tuple[str, ...] | None:
    """The split names to keep, normalised as the split column's values are; None keeps every row."""
    if splits is None:
        return None
    names = (splits,) if isinstance(splits, str) else tuple(splits)
    if not names:
        raise ManifestError(f"{path}: splits must name at least one split, or be None to keep every row")
    try:
        wanted = tuple(dict.fromkeys(normalize_split_name(str(name)) for name in names))
    except _BadRow as err:
        raise ManifestError(f"{path}: splits: {err}") from err
    if split_column is None:
        raise ManifestError(f"{path}: splits={list(names)} needs a split_column")
    if not has_split:
        raise ManifestError(
            f"{path}: cannot keep split(s) {list(wanted)}: the manifest has no {split_column!r} column "
            f"(found columns {columns})"
        )
    return wanted


def _keep_splits(
    path: Path, rows: list[tuple[int, dict | str]], spec: _RowSpec, wanted: tuple[str, ...]
) -> tuple[list[tuple[int, dict | str]], list[tuple[int, str]]]:
    """The rows of the wanted splits, and the (line, label) of the others' labelled rows.

    Runs before any row check, so that a broken file of another split is neither an error nor a
    reported skip. A row whose split cannot be read (a malformed line, an odd split value) is kept:
    it may belong to a wanted split, so the row checks report it.
    """
    selected, other_labels, found = [], [], set()
    for line, row in rows:
        try:
            name = normalize_split_name(row.get(spec.split) or "") if isinstance(row, dict) else None
        except _BadRow:
            name = None
        if name is not None:
            found.add(name)
        if name is None or name in wanted:
            selected.append((line, row))
        elif spec.label is not None and (row.get(spec.label) or "").strip():
            other_labels.append((line, row[spec.label].strip()))
    absent = [name for name in wanted if name not in found]
    if absent:
        raise ManifestError(
            f"{path}: no rows of split(s) {absent}; the manifest's splits are {sorted(found)}"
        )
    return selected, other_labels


def _standard_row(row: dict[str, str | None], line: int, spec: _RowSpec) -> dict[str, Any]:
    """One manifest row as the output's columns; raises _BadRow saying what was expected."""
    for name in (spec.audio, spec.text if spec.text_required else None, spec.label, spec.split):
        if name is not None and name not in row:
            raise _BadRow(f"no {name!r} field (found {sorted(row)})")
    audio = (row[spec.audio] or "").strip()
    if not audio:
        raise _BadRow(f"empty audio path in column {spec.audio!r}")
    audio = os.path.normpath(spec.folder / os.path.expanduser(audio))
    if not os.path.isfile(audio):
        raise _BadRow(f"audio file not found: {audio}")
    record: dict[str, Any] = {
        "id": (row.get(spec.id) or "").strip() if spec.id else "",
        "audio": audio,
        "text": (row.get(spec.text) or "").strip(),
    }
    if not record["id"]:
        record["id"] = f"{spec.path.stem}:{line}"
    if spec.label is not None:
        label = (row[spec.label] or "").strip()
        if not label:
            raise _BadRow(f"empty label in column {spec.label!r}")
        if spec.label_set is not None and label not in spec.label_set:
            raise _BadRow(f"label {label!r} is not one of the labels {sorted(spec.label_set)}")
        record["label"] = label
    if spec.split is not None:
        record["split"] = normalize_split_name(row[spec.split] or "")
    for name in spec.extras:
        record[name] = row.get(name)
    return record


def _warn_about_content(path: Path, kept: list[tuple[int, dict[str, Any]]], expect_empty_text: bool) -> None:
    """One warning for empty transcripts and one for repeated ids: legal, but worth a look.

    With `expect_empty_text` (text_optional: a recognizer will transcribe them) the count is only logged.
    """
    empty = [line for line, record in kept if not record["text"]]
    if empty:
        where = ", ".join(f"{path.name}:{line}" for line in empty[:_MAX_REASONS_LOGGED])
        logger.log(
            logging.INFO if expect_empty_text else logging.WARNING,
            f"{path}: {len(empty)} of {len(kept)} rows have an empty transcript (first: {where})",
        )
    repeated = [name for name, count in Counter(record["id"] for _, record in kept).items() if count > 1]
    if repeated:
        logger.warning(
            f"{path}: {len(repeated)} ids occur more than once (first: {repeated[:_MAX_REASONS_LOGGED]})"
        )


def _build(
    kept: list[tuple[int, dict[str, Any]]], features: Features, has_split: bool
) -> Dataset | DatasetDict:
    def dataset(records: list[dict[str, Any]]) -> Dataset:
        columns = {name: [record[name] for record in records] for name in features}
        if "label" in features:
            columns["label"] = [features["label"].str2int(name) for name in columns["label"]]
        return Dataset.from_dict(columns, features=features)

    records = [record for _, record in kept]
    if not has_split:
        return dataset(records)
    order = {name: position for position, name in enumerate(_SPLIT_ORDER)}
    names = sorted({record["split"] for record in records}, key=lambda name: (order.get(name, 3), name))
    return DatasetDict({name: dataset([r for r in records if r["split"] == name]) for name in names})


def load_manifest(
    path: str | os.PathLike,
    audio_column: str = "audio",
    text_column: str = "text",
    label_column: str | None = "label",
    labels: Sequence[str] | None = None,
    split_column: str | None = "split",
    id_column: str | None = "id",
    on_bad_row: str = "raise",
    compute_duration: bool = True,
    num_proc: int | None = None,
    line_column: str | None = None,
    splits: str | Sequence[str] | None = None,
    text_optional: bool = False,
) -> Dataset | DatasetDict:
    """Load a CSV / TSV / JSONL manifest as a `Dataset`, or a `DatasetDict` keyed by its split column.

    The format follows the extension (.csv, .tsv, .jsonl / .json / .ndjson, one JSON object per
    line). Output columns: `id` (the `id_column`, else "<manifest stem>:<line>"), `audio` (absolute
    path; relative paths resolve against the manifest's folder), `text`, `label` (a ClassLabel whose
    names are `labels`, else the sorted distinct values, numerically when all are integers; a mix of
    integer-looking and other values, e.g. 0, 1 and one 'yes', is a ManifestError naming the odd line),
    `duration` (seconds, from the file header), then the manifest's other columns as strings.

    Args:
        audio_column, text_column, label_column, split_column, id_column: manifest column names.
            `label_column=None` loads an unlabelled dataset (prediction); a named label column that
            is absent is an error. Split values train / validation / test are case-insensitive, and
            dev / valid / val mean validation; the split column is dropped from each split.
        labels: class names in id order; a label outside them is a bad row. Unused if label_column is None.
        on_bad_row: "raise" (ManifestError naming file:line) or "skip" (leave the row out, logging
            one warning with the count and first reasons; `load_manifest_with_report` returns them).
            A missing column is never skipped. Empty transcripts are allowed (one warning).
        compute_duration: read each file's header for `duration` and reject empty or unreadable
            files up front; False only checks that the files exist and adds no `duration` column.
        num_proc: threads for header reads (None: serial, fastest on a local disk).
        line_column: if given, an int column of that name holds each row's 1-based file line, so
            that later problems (e.g. undecodable audio) can still be reported as file:line.
        splits: keep only the rows of these splits (e.g. `("test",)`; names read as the split column's,
            so "dev" is validation) and check nothing of the others: a broken file of another split is
            neither an error nor a skip, and the result is a DatasetDict of these splits. A requested
            split without rows, or a manifest without the split column, is an error. Inferred `labels`
            still come from every labelled row of every split (other splits' rows are not checked, so
            a label seen only on a row that a whole-file load would skip still counts): pass
            `labels=` where class ids must match a model's.
        text_optional: transcripts may be absent (prediction with a speech recognizer that transcribes
            them): a manifest without `text_column`, or a JSONL row without that key, gives an empty
            `text`, and empty transcripts are logged instead of warned about.
    """
    data, _ = load_manifest_with_report(
        path,
        audio_column=audio_column,
        text_column=text_column,
        label_column=label_column,
        labels=labels,
        split_column=split_column,
        id_column=id_column,
        on_bad_row=on_bad_row,
        compute_duration=compute_duration,
        num_proc=num_proc,
        line_column=line_column,
        splits=splits,
        text_optional=text_optional,
    )
    return data


__all__ = ["ManifestError", "SkippedRow", "load_manifest", "load_manifest_with_report"]
