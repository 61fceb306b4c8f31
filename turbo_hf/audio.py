"""The one audio code path: decode, downmix, resample, crop.

Training, evaluation, the pipeline and the CLI all read audio through `load_audio`, so a file
is turned into model input the same way everywhere. Decoding is soundfile (libsndfile) and
resampling is soxr: neither needs torchaudio or torchcodec.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch

AudioSource = str | os.PathLike | bytes | tuple | Mapping | np.ndarray


class AudioDecodingError(ValueError):
    """An audio input that cannot be turned into a finite, non-empty mono waveform."""


def undecoded_audio_fix(column: str = "audio") -> str:
    """The call that keeps a datasets `Audio` column undecoded: its rows become the {"path", "bytes"}
    dicts that `load_audio` reads, without torchcodec."""
    return f'dataset = dataset.cast_column("{column}", Audio(decode=False))'


def _is_torchcodec_decoder(source: Any) -> bool:
    # datasets >= 4 decodes an Audio column into torchcodec decoders (AudioDecoder). Told apart by
    # their module: importing torchcodec (and FFmpeg behind it) is what fails where they are unreadable.
    return type(source).__module__.split(".")[0] == "torchcodec"


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes of encoded audio>"
    if isinstance(source, Mapping) and source.get("path"):
        return str(source["path"])
    return f"<in-memory {type(source).__name__}>"


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """Average the channels of a 2-D array; 1-D input is returned as is.

    soundfile gives (samples, channels), torchaudio and `datasets.Audio(num_channels=...)` give
    (channels, samples): the channel axis is taken to be the shorter one.
    """
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim != 2:
        raise AudioDecodingError(
            f"expected a 1-D or 2-D (samples x channels, or channels x samples) waveform, got shape "
            f"{waveform.shape}"
        )
    return waveform.mean(axis=0 if waveform.shape[0] < waveform.shape[1] else 1)


def resample(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample a 1-D waveform with soxr (high quality); a no-op when the rates agree."""
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    if orig_sampling_rate <= 0:
        raise AudioDecodingError(f"sampling rate must be positive, got {orig_sampling_rate}")
    return soxr.resample(waveform, orig_sampling_rate, target_sampling_rate, quality="HQ").astype(np.float32)


def _decode_file(source: str | os.PathLike | bytes) -> tuple[np.ndarray, int]:
    name = _describe(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        raise AudioDecodingError(f"audio file not found: {name}")
    handle = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else source
    try:
        waveform, sampling_rate = sf.read(handle, dtype="float32", always_2d=False)
    except Exception as err:  # libsndfile raises several error types for unreadable input
        raise AudioDecodingError(f"cannot decode audio {name}: {err}") from err
    return waveform, sampling_rate


def _split_source(source: AudioSource, sampling_rate: int | None) -> tuple[np.ndarray, int]:
    """Normalise every accepted input form to (waveform, sampling_rate)."""
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return _decode_file(source)
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioDecodingError("an audio tuple must be (array, sampling_rate)")
        return np.asarray(source[0], dtype=np.float32), int(source[1])
    if isinstance(source, Mapping):
        if source.get("array") is not None:
            if "sampling_rate" not in source:
                raise AudioDecodingError("an audio dict with 'array' also needs 'sampling_rate'")
            return np.asarray(source["array"], dtype=np.float32), int(source["sampling_rate"])
        if source.get("bytes") is not None:
            return _decode_file(source["bytes"])
        if source.get("path"):
            return _decode_file(source["path"])
        raise AudioDecodingError(
            f"an audio dict needs 'array' + 'sampling_rate', 'bytes' or 'path'; got keys {sorted(source)}"
        )
    if isinstance(source, (np.ndarray, torch.Tensor)):
        if sampling_rate is None:
            raise AudioDecodingError("a raw audio array needs its sampling rate")
        array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else source
        return np.asarray(array, dtype=np.float32), int(sampling_rate)
    if _is_torchcodec_decoder(source):
        raise AudioDecodingError(
            f"a torchcodec {type(source).__name__}, as a decoding datasets Audio column gives, is not read "
            f"here (torchcodec is not needed anywhere else): keep the column undecoded with "
            f"{undecoded_audio_fix()}; its {{'path', 'bytes'}} dicts are then read with soundfile"
        )
    raise AudioDecodingError(
        f"unsupported audio input of type {type(source).__name__}: expected a path, bytes, "
        "(array, sampling_rate) or a dict with 'array'/'bytes'/'path'"
    )


def load_audio(
    source: AudioSource,
    sampling_rate: int,
    source_sampling_rate: int | None = None,
) -> np.ndarray:
    """Read any supported audio input as a float32 mono waveform at `sampling_rate`.

    `source` is a path, encoded bytes, an `(array, sampling_rate)` tuple, a dict as written by
    `datasets.Audio` (`array` + `sampling_rate`, or `bytes` / `path` as `Audio(decode=False)` gives;
    bytes are read first), or a raw array whose rate is given by `source_sampling_rate`. The torchcodec
    decoders of a decoding `Audio` column are refused, naming the fix (`undecoded_audio_fix`).
    Raises `AudioDecodingError` naming the input when it is missing, undecodable, empty, or holds
    NaN / inf.
    """
    waveform, orig_sampling_rate = _split_source(source, source_sampling_rate)
    waveform = to_mono(np.asarray(waveform, dtype=np.float32))
    name = _describe(source)
    if waveform.size == 0:
        raise AudioDecodingError(f"audio {name} is empty (0 samples)")
    if not np.isfinite(waveform).all():
        raise AudioDecodingError(f"audio {name} holds NaN or infinite samples")
    return resample(waveform, orig_sampling_rate, sampling_rate)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, read from the file header (no full decode).

    Raises AudioDecodingError when the header cannot be read (not a sound file, an empty file) or
    describes no samples: the manifest and IEMOCAP loaders call it to reject such files with the same
    words before training, rather than when a batch is read.
    """
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioDecodingError(f"unreadable audio header of {path}: {err}") from err
    if info.frames <= 0:
        raise AudioDecodingError(f"audio file {path} is empty (0 frames)")
    return info.frames / info.samplerate


def check_long_enough(waveform: np.ndarray, min_samples: int | None, sampling_rate: int) -> None:
    """Raise AudioDecodingError when `waveform` is shorter than an encoder's `min_samples`."""
    if min_samples is not None and waveform.shape[0] < min_samples:
        raise AudioDecodingError(
            f"audio too short: {waveform.shape[0]} samples ({waveform.shape[0] / sampling_rate * 1000:.0f} ms "
            f"at {sampling_rate} Hz); the audio encoder needs at least {min_samples}"
        )


def crop_waveform(
    waveform: np.ndarray,
    max_samples: int | None,
    random: bool = True,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Crop to at most `max_samples`: a random window in training, the centre otherwise.

    The random start is drawn from torch's RNG so that `transformers.set_seed` (and per-worker
    seeding in the DataLoader) makes crops reproducible.
    """
    if max_samples is None or waveform.shape[0] <= max_samples:
        return waveform
    excess = waveform.shape[0] - max_samples
    if random:
        start = int(torch.randint(0, excess + 1, (1,), generator=generator).item())
    else:
        start = excess // 2
    return waveform[start : start + max_samples]
