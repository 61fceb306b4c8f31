"""Generic manifest loader: a CSV, TSV or JSONL file listing audio, transcript and label per row.

Any audio+text classification task (device-directed speech, intent, emotion) can be described by
one such file. The loader checks every row where it is first seen, so a typo on line 8,123 is
reported as `manifest.csv:8123: ...` before training starts, not as a crash mid-epoch. Audio stays
a path (decoded lazily by `DataCollatorForAudioText`); only the file header is read, for `duration`.

`load_manifest` runs five steps: read the file, select the wanted splits, check each row, read the
durations, build the datasets.
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from ..audio import AudioDecodingError, audio_duration
from ..configuration_rules import closest
from .manifest_files import ManifestError, read_manifest
from .manifest_options import ManifestOptions
from .splits import SPLIT_ORDER, normalize_split_name, select_splits, wanted_splits

logger = logging.get_logger(__name__)

_STANDARD_COLUMNS = ("id", "audio", "text", "label", "duration")
_MAX_REASONS_LOGGED = 5


class SkippedRow(NamedTuple):
    """A row left out with `on_bad_row="skip"`: its 1-based file line and why."""

    line: int
    reason: str


class _BadRow(Exception):
    """Internal: a row-level problem, raised or skipped according to `on_bad_row`."""


_Rows = list[tuple[int, Any]]  # (file line, row dict, parse error reason or output record)


def load_manifest(
    path: str | os.PathLike,
    options: ManifestOptions | None = None,
    *,
    labels: Sequence[str] | None = None,
    splits: str | Sequence[str] | None = None,
    text_optional: bool = False,
    compute_duration: bool = True,
    num_proc: int | None = None,
    line_column: str | None = None,
    return_skipped: bool = False,
    **option_overrides: Any,
) -> Dataset | DatasetDict | tuple[Dataset | DatasetDict, list[SkippedRow]]:
    """Load a CSV / TSV / JSONL manifest as a `Dataset`, or a `DatasetDict` keyed by its split column.

    The format follows the extension (.csv, .tsv, .jsonl / .json / .ndjson, one JSON object per
    line). Output columns: `id` (the `id_column`, else "<manifest stem>:<line>"), `audio` (absolute
    path; relative paths resolve against the manifest's folder), `text`, `label` (a ClassLabel whose
    names are `labels`, else the sorted distinct values, numerically when all are integers; a mix of
    integer-looking and other values, e.g. 0, 1 and one 'yes', or two spellings of one name, e.g.
    'Happy' and 'happy' or '01' and '1', is a ManifestError naming the odd line), `duration`
    (seconds, from the file header), then the manifest's other columns as strings.

    Args:
        options: a `ManifestOptions` (columns, `on_bad_row`); `option_overrides` set single fields of it,
            e.g. `load_manifest(path, audio_column="wav", on_bad_row="skip")`. `label_column=None` loads
            an unlabelled dataset (prediction); a named column that is absent is an error (the id and
            split columns only when named other than "id" / "split"). Split values train / validation /
            test are case-insensitive, dev / valid / val mean validation, any other value is a bad row,
            and the split column is dropped from each split. `on_bad_row="raise"` stops with a ManifestError
            naming file:line; "skip" leaves the row out, logging one warning with the count and first
            reasons. A missing column is never skipped. Empty transcripts are allowed (one warning).
        labels: class names in id order; a label outside them is a bad row. Unused without a label column.
        splits: keep only the rows of these splits (e.g. `("test",)`; names read as the split column's,
            so "dev" is validation) and check nothing of the others: a broken file of another split is
            neither an error nor a skip, and the result is a DatasetDict of these splits. A requested
            split without rows, or a manifest without the split column, is an error. Inferred `labels`
            still come from every labelled row of every split (other splits' rows are not checked, so
            a label seen only on a row that a whole-file load would skip still counts): pass
            `labels=` where class ids must match a model's.
        text_optional: transcripts may be absent (prediction with a speech recognizer that transcribes
            them): a manifest without the text column, or a JSONL row without that key, gives an empty
            `text`, and empty transcripts are logged instead of warned about.
        compute_duration: read each file's header for `duration` and reject empty or unreadable
            files up front; False only checks that the files exist and adds no `duration` column.
        num_proc: threads for header reads (None: serial, fastest on a local disk).
        line_column: if given, an int column of that name holds each row's 1-based file line, so
            that later problems (e.g. undecodable audio) can still be reported as file:line.
        return_skipped: also return the rows skipped with `on_bad_row="skip"`, as `(data, skipped)`
            with `SkippedRow(line, reason)` items in file order.
    """
    _check_arguments(labels, option_overrides)
    options = dataclasses.replace(options or ManifestOptions(), **option_overrides)
    path = Path(path)
    text_column = None if text_optional else options.text_column
    required = [name for name in (options.audio_column, text_column, options.label_column) if name]
    named = [getattr(options, f"{kind}_column") for kind in ("audio", "text", "label", "split", "id")]
    columns, rows = read_manifest(
        path,
        required,
        line_column,
        string_columns=[name for name in named if name],
        named_optional=_named_optional_columns(options),
    )
    if text_optional and options.text_column not in columns:
        logger.info(f"{path}: no {options.text_column!r} column; every row has an empty transcript")
    wanted = wanted_splits(path, splits, options.split_column, columns)
    other_labels: list[tuple[int, str]] = []
    if wanted is not None:
        rows, other_labels = select_splits(path, rows, options.split_column, options.label_column, wanted)
    spec = _row_spec(path, options, columns, labels, text_optional)
    kept, problems = _check_rows(rows, spec, line_column)
    if compute_duration:
        kept, unreadable = _add_durations(kept, num_proc)
        problems += unreadable
    scope = f" of split(s) {list(wanted)}" if wanted else ""
    _report(path, problems, options.on_bad_row, f"{len(rows)} rows{scope}")
    empty = [name for name in wanted or () if not any(record["split"] == name for _, record in kept)]
    if not kept or empty:
        which = f" of split(s) {empty}" if empty else ""
        raise ManifestError(
            f"{path}: no usable rows{which} ({len(rows)} read{scope}, {len(problems)} skipped)"
        )
    _warn_about_content(path, kept, expect_empty_text=text_optional)
    # Other splits' labels count too, so that class ids do not depend on which splits are loaded.
    label_values = [(line, record["label"]) for line, record in kept if "label" in record] + other_labels
    data = _build(path, kept, spec, labels, label_values, compute_duration, line_column)
    return (data, problems) if return_skipped else data


def _check_arguments(labels: Sequence[str] | None, overrides: dict[str, Any]) -> None:
    """TypeErrors for `labels` given as one string (its characters would become the classes) and for
    a misspelt keyword, with the option it most likely meant (dataclasses' own error names none)."""
    if isinstance(labels, (str, bytes)):
        raise TypeError(
            f"labels= must be a sequence of class names, got the string {labels!r}; "
            "pass a list, e.g. labels=['no', 'yes']"
        )
    known = [option.name for option in dataclasses.fields(ManifestOptions)]
    for name in overrides:
        if name not in known:
            close = closest(name, known)
            hint = f"; did you mean {close!r}?" if close else f"; ManifestOptions fields are {known}"
            raise TypeError(f"load_manifest() got an unexpected keyword argument {name!r}{hint}")


def _named_optional_columns(options: ManifestOptions) -> dict[str, str]:
    """{option: column} of the id and split columns named other than by default. Under their default
    names they are optional; a column the caller named must exist, since a typo in its name would
    silently give generated ids or a single split."""
    defaults = ManifestOptions()
    names = {option: getattr(options, option) for option in ("id_column", "split_column")}
    return {option: name for option, name in names.items() if name not in (None, getattr(defaults, option))}


# -- check rows --------------------------------------------------------------------------------------
class _RowSpec(NamedTuple):
    """Where a manifest lives and which of its columns feed which output column."""

    path: Path
    folder: Path
    audio: str
    text: str
    text_required: bool
    label: str | None
    label_set: set[str] | None
    split: str | None  # None: the file has no split column
    id: str | None
    extras: list[str]


def _row_spec(
    path: Path,
    options: ManifestOptions,
    columns: list[str],
    labels: Sequence[str] | None,
    text_optional: bool,
) -> _RowSpec:
    named = [getattr(options, f"{kind}_column") for kind in ("audio", "text", "label", "split", "id")]
    ignored = [name for name in columns if name not in named and name in _STANDARD_COLUMNS]
    if ignored:
        # e.g. a `label` column when predicting with label_column=None, or a stale `duration`.
        logger.info(f"{path}: column(s) {ignored} are not used; the output's own columns replace them")
    label_set = None
    if options.label_column is not None and labels is not None:
        label_set = set(map(str, labels))
        if len(label_set) != len(labels):
            raise ValueError(f"labels must be distinct, got {list(labels)}")
    return _RowSpec(
        path=path,
        folder=path.resolve().parent,
        audio=options.audio_column,
        text=options.text_column,
        text_required=not text_optional,
        label=options.label_column,
        label_set=label_set,
        split=options.split_column if options.split_column in columns else None,
        id=options.id_column,
        extras=[name for name in columns if name not in named and name not in _STANDARD_COLUMNS],
    )


def _check_rows(rows: _Rows, spec: _RowSpec, line_column: str | None) -> tuple[_Rows, list[SkippedRow]]:
    """(line, output record) of the good rows, and (line, reason) of the bad ones."""
    kept, problems = [], []
    for line, row in rows:
        try:
            if isinstance(row, str):  # a line the file reader could not parse
                raise _BadRow(row)
            record = _standard_row(row, line, spec)
            if line_column is not None:
                record[line_column] = line
            kept.append((line, record))
        except _BadRow as err:
            problems.append(SkippedRow(line, str(err)))
    return kept, problems


def _standard_row(row: dict[str, str | None], line: int, spec: _RowSpec) -> dict[str, Any]:
    """One manifest row as the output's columns; raises _BadRow saying what was expected."""
    for name in (spec.audio, spec.text if spec.text_required else None, spec.label, spec.split):
        if name is not None and name not in row:
            raise _BadRow(f"no {name!r} field (found {sorted(row)})")
    audio = (row[spec.audio] or "").strip()
    if not audio:
        raise _BadRow(f"empty audio path in column {spec.audio!r}")
    audio = os.path.normpath(spec.folder / os.path.expanduser(audio))
    if os.path.isdir(audio):
        raise _BadRow(f"audio path is a directory: {audio}")
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
        try:
            record["split"] = normalize_split_name(row[spec.split] or "")
        except ValueError as err:
            raise _BadRow(str(err)) from err
    for name in spec.extras:
        record[name] = row.get(name)
    return record


def _report(path: Path, problems: list[SkippedRow], on_bad_row: str, total: str) -> None:
    """Raise on the first bad row, or log one warning for all skipped rows."""
    if not problems:
        return
    problems.sort()
    if on_bad_row == "raise":
        line, reason = problems[0]
        more = f" ({len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise ManifestError(f"{path}:{line}: {reason}{more}; pass on_bad_row='skip' to leave bad rows out")
    first = "; ".join(f"{path.name}:{line}: {reason}" for line, reason in problems[:_MAX_REASONS_LOGGED])
    logger.warning(f"{path}: skipped {len(problems)} of {total}; first: {first}")


def _warn_about_content(path: Path, kept: _Rows, expect_empty_text: bool) -> None:
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


# -- durations ---------------------------------------------------------------------------------------
def _add_durations(kept: _Rows, num_proc: int | None) -> tuple[_Rows, list[SkippedRow]]:
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


# -- build -------------------------------------------------------------------------------------------
def _class_names(path: Path, values: list[tuple[int, str]], labels: Sequence[str] | None) -> list[str]:
    """ClassLabel names: `labels` as given, else the sorted distinct values of the (line, value) pairs.

    Inferred names sort numerically when all look like integers. A mix of integer-looking and other
    values (0, 1 and one 'yes') is most likely a typo that would silently become a class of its own,
    so it is an error naming the first line of the rarer kind, whatever `on_bad_row` says: that row is
    only odd relative to the others, and skipping it would quietly decide which kind was meant. Two
    spellings of one name (see `_check_spellings`) are an error for the same reason.
    """
    if labels is not None:
        return [str(name) for name in labels]
    is_integer = {value: re.fullmatch(r"-?\d+", value) is not None for _, value in values}
    if any(is_integer.values()) and not all(is_integer.values()):
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
    _check_spellings(path, values)
    return sorted(is_integer, key=int) if all(is_integer.values()) else sorted(is_integer)


def _spelling(value: str) -> str:
    """What the spellings of one class name share: the NFKC form, case-folded, without format
    characters (zero-width spaces, BOMs) or surrounding spaces; for an integer, its value ('01' is 1)."""
    text = "".join(
        char for char in unicodedata.normalize("NFKC", value) if unicodedata.category(char) != "Cf"
    )
    text = text.strip().casefold()
    return str(int(text)) if re.fullmatch(r"-?\d+", text) else text


def _check_spellings(path: Path, values: list[tuple[int, str]]) -> None:
    """Raise at the first line of a label spelt differently from a more frequent label of the same
    `_spelling` ('Happy' beside 'happy', '01' beside '1'): inferred, each would be a class of its own.
    On a tie, the spelling that occurs first in the file is the expected one."""
    spelling = {value: _spelling(value) for value in {value for _, value in values}}
    rows: dict[str, Counter] = {}
    first_line: dict[str, int] = {}
    for line, value in values:  # other splits' labels come last: lines are not in file order
        rows.setdefault(spelling[value], Counter())[value] += 1
        first_line[value] = min(line, first_line.get(value, line))
    odd = []
    for counts in rows.values():
        if len(counts) > 1:
            usual = max(counts, key=lambda value: (counts[value], -first_line[value]))
            odd += [(first_line[value], value, usual, counts[usual]) for value in counts if value != usual]
    if odd:
        line, value, usual, count = min(odd)
        raise ManifestError(
            f"{path}:{line}: label {value!r} is another spelling of {usual!r} (line {first_line[usual]}, "
            f"{count} row(s)): equal once case, Unicode width, invisible characters and leading zeros are "
            "ignored, but it would become a class of its own; fix the row, or pass labels=[...] to name "
            "every class in index order if they are meant to differ"
        )


def _build(
    path: Path,
    kept: _Rows,
    spec: _RowSpec,
    labels: Sequence[str] | None,
    label_values: list[tuple[int, str]],
    compute_duration: bool,
    line_column: str | None,
) -> Dataset | DatasetDict:
    """The checked records as one Dataset, or a DatasetDict by split in train, validation, test order."""
    features = {"id": Value("string"), "audio": Value("string"), "text": Value("string")}
    if spec.label is not None:
        features["label"] = ClassLabel(names=_class_names(path, label_values, labels))
    if compute_duration:
        features["duration"] = Value("float64")
    features.update({name: Value("string") for name in spec.extras})
    if line_column is not None:
        features[line_column] = Value("int64")
    features = Features(features)

    def dataset(records: list[dict[str, Any]]) -> Dataset:
        columns = {name: [record[name] for record in records] for name in features}
        if "label" in features:
            columns["label"] = [features["label"].str2int(name) for name in columns["label"]]
        return Dataset.from_dict(columns, features=features)

    records = [record for _, record in kept]
    if spec.split is None:
        return dataset(records)
    order = {name: position for position, name in enumerate(SPLIT_ORDER)}
    names = sorted({record["split"] for record in records}, key=lambda name: (order.get(name, 3), name))
    return DatasetDict({name: dataset([r for r in records if r["split"] == name]) for name in names})


__all__ = ["ManifestError", "ManifestOptions", "SkippedRow", "load_manifest"]
