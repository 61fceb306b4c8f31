"""Reading a manifest file: CSV, TSV or JSONL rows, each with the file line it starts on.

Only parsing and the header's columns live here; `manifest.py` checks the rows' content and turns them
into a dataset. A row that cannot be parsed is kept as (line, reason) so that the caller raises or
skips it with its line.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

DELIMITERS = {".csv": ",", ".tsv": "\t"}
JSON_LINES = (".jsonl", ".json", ".ndjson")


class ManifestError(ValueError):
    """A manifest that cannot be loaded as asked; the message names the file and line."""


def _as_text(value: Any) -> str | None:
    """JSON values to the strings a CSV would hold (true -> "true", 3 -> "3", lists as JSON)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _read_delimited(path: Path, delimiter: str) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """Header and (line, row dict or error reason) pairs of a CSV / TSV file.

    TSV has no quoting (IANA text/tab-separated-values): a stray `"` in a transcript must not swallow
    the lines that follow, so TSV is read with QUOTE_NONE.
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    parsed: list[tuple[int, dict | str]] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise ManifestError(f"{path}: empty manifest; expected a header line naming the columns")
        duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
        if duplicates:
            raise ManifestError(f"{path}:1: duplicate column names {duplicates}")
        previous_end = reader.line_num
        for fields in reader:
            # A quoted field may span lines: a row starts on the line after the previous row ended.
            line, previous_end = previous_end + 1, reader.line_num
            if not fields:
                continue
            if len(fields) != len(header):
                parsed.append(
                    (line, f"expected {len(header)} fields ({', '.join(header)}), found {len(fields)}")
                )
            else:
                parsed.append((line, dict(zip(header, fields))))
    return header, parsed


def _read_json_lines(path: Path) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """Field names (union over rows, first-seen order) and (line, row dict or error reason) pairs."""
    parsed: list[tuple[int, dict | str]] = []
    fields: dict[str, None] = {}
    with open(path, encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                hint = " (a JSON array? write one object per line)" if text.lstrip().startswith("[") else ""
                parsed.append((line, f"malformed JSON: {err.msg} at column {err.colno}{hint}"))
                continue
            if not isinstance(row, dict):
                parsed.append((line, f"expected a JSON object per line, found {type(row).__name__}"))
                continue
            fields.update(dict.fromkeys(row))
            parsed.append((line, {key: _as_text(value) for key, value in row.items()}))
    return list(fields), parsed


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """Column names and every (line, row dict or error reason) of the manifest, by extension."""
    suffix = path.suffix.lower()
    if suffix not in DELIMITERS and suffix not in JSON_LINES:
        accepted = ", ".join([*DELIMITERS, *JSON_LINES])
        raise ManifestError(f"{path}: unsupported manifest extension {suffix!r}; expected one of {accepted}")
    try:
        if suffix in DELIMITERS:
            return _read_delimited(path, DELIMITERS[suffix])
        return _read_json_lines(path)
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text: {err}") from err


def read_manifest(
    path: Path, required: list[str], line_column: str | None = None
) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """`read_rows` of an existing manifest that has every `required` column (a missing one is never
    a bad row: it is an error naming the columns found)."""
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    columns, rows = read_rows(path)
    missing = [name for name in required if name not in columns]
    if missing:
        where = f"{path}:1" if path.suffix.lower() in DELIMITERS else str(path)  # the CSV / TSV header
        raise ManifestError(f"{where}: missing column(s) {missing}; found columns {columns}")
    if line_column is not None and line_column in columns:
        raise ManifestError(
            f"{path}: line_column {line_column!r} would replace the manifest's column of that name"
        )
    return columns, rows
