"""The rules for the pipeline's options (`top_k`, `batch_size`, `max_duration`) and their defaults.

Standard library only, so that `turbo-hf` checks its flags with the same rules, and shows the same
default, without importing torch. The "audio-text-classification" pipeline checks its keyword
arguments with these functions, and `load_audio`, `DecodeAndCrop` and the recipes' `DataArguments`
check their `max_duration` with the same one, so each rule and default is written once.
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


def check_max_duration(
    value: Any, name: str = "max_duration", sampling_rate: int | None = None
) -> float | None:
    """`value` as seconds (a float), or None (keep whole clips); a positive, finite number otherwise
    (a TypeError for another type, a ValueError for another number).

    With `sampling_rate`, a duration shorter than one sample there is refused too."""
    if value is None:
        return None
    expected = f"{name} must be a positive number of seconds or None (keep whole clips)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}; got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{expected}; got {value!r}")
    if sampling_rate is not None and round(value * sampling_rate) < 1:
        raise ValueError(f"{name}={value!r} s is less than one sample at {sampling_rate} Hz")
    return float(value)


def check_device(device: Any, name: str = "device"):
    """`device` (None, -1 or "cpu", an accelerator index, a device string or a torch.device) as a
    torch.device, or None for the default; a ValueError unless this machine has that device."""
    if device is None:
        return None
    import torch  # lazily: `turbo-hf --help` does not import torch

    given = device
    try:
        if isinstance(device, str) and device.lstrip("-").isdigit():
            device = int(device)
        if isinstance(device, bool):
            raise TypeError("a bool is not a device")
        if isinstance(device, int):
            if device < 0:
                return torch.device("cpu")  # transformers' convention for the CPU
            if not torch.accelerator.is_available():
                raise ValueError("an accelerator index, and this machine has none")
            device = torch.device(torch.accelerator.current_accelerator().type, device)
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{name} {given}: {err}; use cpu, or an accelerator this machine has") from err
    if parsed.type == "cpu":
        return parsed
    backend = getattr(torch, parsed.type, None)
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        raise ValueError(f"{name} {given}: this machine has no {parsed.type} device (use cpu)")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if parsed.index is not None and parsed.index >= count:
        raise ValueError(
            f"{name} {given}: this machine has {count} {parsed.type} device(s), "
            f"{parsed.type}:0 to {parsed.type}:{count - 1}"
        )
    return parsed


__all__ = ["DEFAULT_MAX_DURATION", "check_device", "check_max_duration", "check_positive_int"]
