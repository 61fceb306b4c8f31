"""Reading a manifest file: CSV, TSV or JSONL rows, each with the file line it starts on.

Only parsing and the header's columns live here; `manifest.py` checks the rows' content and turns them
into a dataset. A row that cannot be parsed is kept as (line, reason) so that the caller raises or
skips it with its line.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

DELIMITERS = {".csv": ",", ".tsv": "\t"}
JSON_LINES = (".jsonl", ".json", ".ndjson")
_DELIMITER_NAMES = {",": "comma", "\t": "tab"}


class ManifestError(ValueError):
    """A manifest that cannot be loaded as asked; the message names the file and line."""


class _RefusedJson(ValueError):
    """Internal: a JSON line that parses but is not a manifest row (duplicate keys, NaN)."""


def _as_text(value: Any) -> str | None:
    """JSON values to the strings a CSV would hold (true -> "true", 3 -> "3", lists as JSON)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: a key given twice would silently keep the last value, so it is refused."""
    repeated = [key for key, count in Counter(key for key, _ in pairs).items() if count > 1]
    if repeated:
        raise _RefusedJson(f"duplicate key {repeated[0]!r} in one JSON object")
    return dict(pairs)


def _json_constant(name: str) -> Any:
    """parse_constant: Python's json reads NaN / Infinity, which JSON does not have; here they are
    most likely a missing value written by pandas, which would become the string 'nan'."""
    raise _RefusedJson(f"{name} is not a JSON value (a missing value? write null)")


def _swallowed_row(lines: list[str], first: int, end: int, width: int, delimiter: str) -> int | None:
    """For a record `lines[first:end]` spanning lines: the index of a line it took in that reads as a
    complete row, if its opening line is a complete row too; else None.

    A stray quote leaves its own line complete (read without quoting, it has all `width` fields) and
    turns the rows below into one transcript; a transcript with a line break leaves its opening line
    short of the columns after it. Both lines must read as rows, and the line taken in must hold no
    open quote (it is not the line that closes the field), so that a line break in a transcript whose
    lines hold commas is not mistaken for one.
    """

    def width_of(line: str, quoting: int) -> int:
        try:
            return len(next(csv.reader([line], delimiter=delimiter, quoting=quoting), []))
        except csv.Error:
            return 0

    if width_of(lines[first], csv.QUOTE_NONE) != width:
        return None
    # A line taken in whole holds balanced quotes; the line that closes the quote holds one more, and
    # its fields after the quote are the record's own (`"...\nno, really",neutral`).
    return next(
        (
            index
            for index in range(first + 1, end)
            if lines[index].count('"') % 2 == 0 and width_of(lines[index], csv.QUOTE_MINIMAL) == width
        ),
        None,
    )


def _unreadable(err: csv.Error, start: int, end: int) -> str:
    """Why csv could not read the record of `lines[start:end]`, for its bad row."""
    if "field limit" not in str(err):
        return f"unreadable line: {err}"
    reason = f"a field longer than {csv.field_size_limit()} characters (csv's field_size_limit)"
    if end - start > 1:
        reason += f", in a quote opened on line {start + 1} that runs past line {end}"
    return reason


def _read_delimited(path: Path, text: str, delimiter: str) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """Header and (line, row dict or error reason) pairs of a CSV / TSV file.

    TSV has no quoting (IANA text/tab-separated-values): a stray `"` in a transcript must not swallow
    the lines that follow, so TSV is read with QUOTE_NONE. In a CSV a quoted field may hold a line
    break, but not rows (see `_swallowed_row`): the rows in between would silently vanish into one
    transcript. Such a record, or one with a field over csv's field_size_limit, is a bad row at the
    line where it starts, and reading resumes on the next line, so that skipping it leaves out that
    one line and reads the lines it had taken in as their own rows.
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    lines = io.StringIO(text, newline="").readlines()

    def reader(start: int):
        # islice skips at C speed; a reader restarts only after a bad record
        return csv.reader(itertools.islice(lines, start, None), delimiter=delimiter, quoting=quoting)

    rows = reader(0)
    try:
        header = [name.strip() for name in next(rows, [])]
    except csv.Error as err:
        raise ManifestError(f"{path}:1: unreadable header: {_unreadable(err, 0, rows.line_num)}") from err
    if not header:
        raise ManifestError(f"{path}: empty manifest; expected a header line naming the columns")
    nameless = [column for column, name in enumerate(header, start=1) if not name]
    if nameless:
        raise ManifestError(
            f"{path}:1: column {nameless[0]} of the header has no name (a trailing "
            f"{_DELIMITER_NAMES[delimiter]}?); found columns {header}"
        )
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise ManifestError(f"{path}:1: duplicate column names {duplicates}")
    parsed: list[tuple[int, dict | str]] = []
    position, base = rows.line_num, 0  # the next record starts at lines[position]; rows starts at base
    while position < len(lines):
        line = position + 1
        try:
            fields = next(rows)
        except csv.Error as err:
            parsed.append((line, _unreadable(err, position, base + rows.line_num)))
            position = position + 1
            rows, base = reader(position), position  # resume on the next line
            continue
        end = base + rows.line_num
        swallowed = (
            _swallowed_row(lines, position, end, len(header), delimiter) if end - position > 1 else None
        )
        if swallowed is not None:
            parsed.append(
                (
                    line,
                    f"a quoted field opened on line {line} runs to line {end} and takes in line "
                    f"{swallowed + 1}, which reads as a complete row, as line {line} does without the "
                    f"quote; close or remove the quote on line {line} (a quoted transcript may hold a line "
                    "break, not rows)",
                )
            )
            end = position + 1
            rows, base = reader(end), end
        elif fields and len(fields) != len(header):  # [] is a blank line
            parsed.append((line, f"expected {len(header)} fields ({', '.join(header)}), found {len(fields)}"))
        elif fields:
            parsed.append((line, dict(zip(header, fields))))
        position = end
    return header, parsed


def _read_json_lines(
    path: Path, text: str, string_columns: Collection[str]
) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """Field names (union over rows, first-seen order) and (line, row dict or error reason) pairs.

    `string_columns` (the columns the loader reads as paths, transcripts, labels, ids, splits) must
    not hold a list or object: its JSON text would become a transcript or a class of its own. The
    manifest's other columns may, and are kept as JSON text.
    """
    parsed: list[tuple[int, dict | str]] = []
    fields: dict[str, None] = {}
    for line, content in enumerate(io.StringIO(text, newline=None), start=1):
        if not content.strip():
            continue
        try:
            row = json.loads(content, object_pairs_hook=_json_object, parse_constant=_json_constant)
        except json.JSONDecodeError as err:
            hint = " (a JSON array? write one object per line)" if content.lstrip().startswith("[") else ""
            parsed.append((line, f"malformed JSON: {err.msg} at column {err.colno}{hint}"))
            continue
        except _RefusedJson as err:
            parsed.append((line, str(err)))
            continue
        if not isinstance(row, dict):
            parsed.append((line, f"expected a JSON object per line, found {type(row).__name__}"))
            continue
        fields.update(dict.fromkeys(row))
        nested = [name for name in string_columns if isinstance(row.get(name), (list, dict))]
        if nested:
            kind = "list" if isinstance(row[nested[0]], list) else "object"
            parsed.append((line, f"field {nested[0]!r} holds a JSON {kind}; expected a string"))
            continue
        parsed.append((line, {key: _as_text(value) for key, value in row.items()}))
    if not parsed:
        raise ManifestError(f"{path}: empty manifest; expected one JSON object per line")
    if not fields:
        # No line gave a row's keys (e.g. a pretty-printed JSON array): the first line says why, where
        # a list of missing columns, found [], would hide it.
        line, reason = parsed[0]
        raise ManifestError(f"{path}:{line}: {reason}; no line of the file reads as a row")
    return list(fields), parsed


def _decode(path: Path) -> str:
    """The file as text; a byte that is not UTF-8 is an error naming its line (a decoder's offset
    into its current chunk would name none)."""
    data = path.read_bytes()
    data = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ManifestError(
            f"{path}:{line}: not UTF-8 text: byte 0x{data[err.start]:02x} at byte {column} of the line "
            "(save the file as UTF-8)"
        ) from err


def read_rows(
    path: Path, string_columns: Collection[str] = ()
) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """Column names and every (line, row dict or error reason) of the manifest, by extension.

    `string_columns`: JSONL fields that must hold a string, number or null (see `_read_json_lines`).
    """
    suffix = path.suffix.lower()
    if suffix not in DELIMITERS and suffix not in JSON_LINES:
        accepted = ", ".join([*DELIMITERS, *JSON_LINES])
        raise ManifestError(f"{path}: unsupported manifest extension {suffix!r}; expected one of {accepted}")
    text = _decode(path)
    if suffix in DELIMITERS:
        return _read_delimited(path, text, DELIMITERS[suffix])
    return _read_json_lines(path, text, string_columns)


def read_manifest(
    path: Path,
    required: list[str],
    line_column: str | None = None,
    string_columns: Collection[str] = (),
    named_optional: dict[str, str] | None = None,
) -> tuple[list[str], list[tuple[int, dict | str]]]:
    """`read_rows` of an existing manifest that has every `required` column and every column of
    `named_optional` ({option: column} of optional columns the caller named). A missing one is never a
    bad row: it is an error naming the columns found."""
    if path.is_dir():
        raise IsADirectoryError(f"manifest {path} is a directory; expected a CSV, TSV or JSONL file")
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    columns, rows = read_rows(path, string_columns)
    where = f"{path}:1" if path.suffix.lower() in DELIMITERS else str(path)  # the CSV / TSV header
    missing = [name for name in required if name not in columns]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {missing}; found columns {columns}")
    for option, name in (named_optional or {}).items():
        if name not in columns:
            raise ManifestError(
                f"{where}: missing column(s) [{name!r}] (named by {option}); found columns {columns}"
            )
    if line_column is not None and line_column in columns:
        raise ManifestError(
            f"{path}: line_column {line_column!r} would replace the manifest's column of that name"
        )
    return columns, rows
