"""The rules for the pipeline's options (`top_k`, `batch_size`, `max_duration`) and their defaults.

Standard library only, so that `turbo-hf` checks its flags with the same rules, and shows the same
default, without importing torch. The "audio-text-classification" pipeline checks its keyword
arguments with these functions, so each rule and default is written once.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

# Seconds of audio the pipeline classifies per clip unless told otherwise: the centre is kept, as
# evaluation crops. Attention makes the cost grow with the square of the length (a 10-minute clip
# took 73 s and +0.7 GB on a tiny model); 30 s is twice training's default crop
# (DataArguments.max_duration), Whisper's own window, and longer than nearly every utterance of the
# emotion corpora the toolkit is used on, so those are classified whole.
DEFAULT_MAX_DURATION = 30.0


def check_positive_int(value: Any, name: str) -> int:
    """`value` as an int; TypeError unless it is an integer (a bool is not), ValueError unless >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_max_duration(value: Any, name: str = "max_duration") -> float | None:
    """`value` as seconds (a float), or None (keep whole clips); a positive, finite number otherwise."""
    if value is None:
        return None
    expected = f"{name} must be a positive number of seconds or None (keep whole clips)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}; got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{expected}; got {value!r}")
    return float(value)


__all__ = ["DEFAULT_MAX_DURATION", "check_max_duration", "check_positive_int"]
