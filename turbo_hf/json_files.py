"""Strict JSON for every file and line the toolkit writes: an undefined number (NaN or infinite, such
as the EER of a split with one class) becomes null, since JSON has no NaN and parsers other than
Python's refuse the `NaN` that `json.dumps` writes by default.

Standard library only (numpy and torch values are recognised by their methods), so that `turbo-hf`
and the recipe drivers can use it without importing either.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from typing import Any


def strict_json(value: Any) -> Any:
    """`value` ready for `json.dumps(..., allow_nan=False)`: every NaN or infinite number becomes None;
    numpy and torch scalars and arrays become Python numbers and lists. Mappings, lists and tuples are
    converted throughout."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().tolist()
    elif hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, Mapping):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` of `strict_json(value)`, refusing whatever would still not be strict JSON."""
    return json.dumps(strict_json(value), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, value: Any, **kwargs: Any) -> None:
    """Write `dumps(value, indent=2, **kwargs)` and a newline to `path`, replacing it at once: a reader
    never sees a half-written file."""
    text = dumps(value, indent=2, **kwargs) + "\n"
    path = os.fspath(path)
    # A name of its own (not mkstemp's, whose 0600 mode would stay on the file): the processes of one
    # launch that write the same file must not share their partial file.
    partial = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


__all__ = ["dumps", "strict_json", "write_json"]
