"""The one audio code path: decode, downmix, resample, crop.

Training, evaluation, the pipeline and the CLI all read audio through `load_audio`, so a file
is turned into model input the same way everywhere. Decoding is soundfile (libsndfile) and
resampling is soxr: neither needs torchaudio or torchcodec.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
import soxr
import torch

from .pipeline_options import check_max_duration

AudioSource = str | os.PathLike | bytes | tuple | Mapping | np.ndarray

# Sampling rates a recording can have: from well below telephone speech (8 kHz) up to the highest
# rate of studio converters (384 kHz = 8 x 48 kHz). A header outside them is damaged, and trusting it
# is costly: 20,000 samples said to be at 1 Hz become 320 M samples at 16 kHz.
MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000
_ACCEPTED_RATES = f"{MIN_SAMPLING_RATE} to {MAX_SAMPLING_RATE} Hz"
# Integer PCM types and (zero, full scale): the scaling soundfile applies to integer files.
_INTEGER_PCM = {
    np.dtype(np.int8): (0, 2**7),
    np.dtype(np.int16): (0, 2**15),
    np.dtype(np.int32): (0, 2**31),
    np.dtype(np.uint8): (2**7, 2**7),
}
# Frames, at the lower of the two rates, read on each side of a window so that soxr's filter has the
# context it has inside the whole file: 256 gives the samples of resampling the whole file to ~1e-6.
_RESAMPLING_CONTEXT = 256
# Float samples are in [-1, 1]; resampling, float files with headroom and standardised waveforms
# (zero mean, unit variance: peaks of 5 to 30 in speech) go past it. Peaks beyond 100 are integer PCM
# cast to float without scaling: int16 speech peaks in the thousands.
MAX_FLOAT_PEAK = 100.0
# Channels a recording may have (beyond surround and small microphone arrays): a wider 2-D array is a
# batch of waveforms, which would be averaged into one.
MAX_CHANNELS = 32
# The data sizes that streaming writers put in a WAV header before the length is known.
_STREAMING_WAV_SIZES = (0, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF)
# Share of the declared samples a WAV file may lack and still be read: a few bytes short is a
# writer's rounding (odd-sized chunks, a last partial frame), not a cut-off download.
_WAV_SHORTFALL_ACCEPTED = 0.01


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


def check_sampling_rate(value: Any, what: str) -> int:
    """`value` as an int number of Hz within the accepted range (MIN_SAMPLING_RATE to MAX_SAMPLING_RATE).

    Integral floats (16000.0) count as integers. Raises AudioDecodingError naming `what` (the field
    the value came from) otherwise: None, 0, negative, NaN, fractional, strings and booleans.
    """
    rate = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        rate = int(value) if float(value).is_integer() else None
    if rate is None or not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
        raise AudioDecodingError(
            f"{what} must be an integer number of Hz from {_ACCEPTED_RATES}; got {value!r}"
        )
    return rate


def _check_header_rate(rate: int, name: str) -> int:
    if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
        raise AudioDecodingError(
            f"audio {name}: its header gives a sampling rate of {rate} Hz, outside the accepted "
            f"{_ACCEPTED_RATES} (a damaged header, or not a recording)"
        )
    return rate


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """Average the channels of a 2-D array; 1-D input is returned as is.

    soundfile gives (samples, channels), torchaudio and `datasets.Audio(num_channels=...)` give
    (channels, samples): the channel axis is taken to be the shorter one.
    """
    if waveform.ndim == 1:
        return waveform
    _check_layout(waveform.shape)
    return waveform.mean(axis=0 if waveform.shape[0] < waveform.shape[1] else 1)


def _check_layout(shape: tuple[int, ...]) -> None:
    if len(shape) not in (1, 2):
        raise AudioDecodingError(
            f"expected a 1-D or 2-D (samples x channels, or channels x samples) waveform, got shape {shape}"
        )
    if len(shape) == 2 and 0 not in shape:
        channels, samples = sorted(shape)
        if channels == samples:
            raise AudioDecodingError(
                f"a {shape} waveform is ambiguous: the channel axis is the shorter one; pass a 1-D array "
                "or one with more samples than channels"
            )
        if channels > MAX_CHANNELS:
            raise AudioDecodingError(
                f"a {shape} waveform would have {channels} channels (more than {MAX_CHANNELS}): a batch "
                "of waveforms? pass them one by one"
            )


def resample(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample a 1-D waveform with soxr (high quality); a no-op when the rates agree."""
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    if orig_sampling_rate <= 0:
        raise AudioDecodingError(f"sampling rate must be positive, got {orig_sampling_rate}")
    return soxr.resample(waveform, orig_sampling_rate, target_sampling_rate, quality="HQ").astype(np.float32)


def resampled_length(frames: int, orig_sampling_rate: int, target_sampling_rate: int) -> int:
    """Samples `resample` returns for `frames` samples: soxr rounds frames * target / orig half up."""
    return (2 * frames * target_sampling_rate + orig_sampling_rate) // (2 * orig_sampling_rate)


def _as_float32(array: np.ndarray, name: str) -> np.ndarray:
    """Float samples as float32; integer PCM scaled to [-1, 1] by its full range."""
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    if array.dtype in _INTEGER_PCM:
        zero, scale = _INTEGER_PCM[array.dtype]
        return ((array.astype(np.float64) - zero) / scale).astype(np.float32)
    raise AudioDecodingError(
        f"audio {name}: samples of type {array.dtype.name} are not read: pass float samples in [-1, 1], "
        "or integer PCM as int16, int32, int8 or uint8 (scaled by its full range)"
    )


def _check_wav_complete(opened: sf.SoundFile, name: str) -> None:
    """A WAV file holds the data its header declares: libsndfile reads a cut-off file as a shorter
    one and only says so in its log ("data : 320000 (should be 31960)")."""
    if opened.format != "WAV":
        return
    declared = re.search(r"^data : (\d+) \(should be (\d+)\)", opened.extra_info, re.MULTILINE)
    if declared is None:
        return
    expected, present = int(declared.group(1)), int(declared.group(2))
    shortfall = (expected - present) / expected if expected else 0.0
    if shortfall > _WAV_SHORTFALL_ACCEPTED and expected not in _STREAMING_WAV_SIZES:
        raise AudioDecodingError(
            f"audio {name} is cut off: its header declares {expected} bytes of samples, the file holds "
            f"{present} ({present / expected:.0%}); re-export or re-download it"
        )


class _Source(NamedTuple):
    """An opened input: its rate and length in frames, and a reader of frames [start, stop) as mono
    float32 (stop None: to the end) that reads nothing else."""

    name: str
    sampling_rate: int
    frames: int
    read: Callable[[int, int | None], np.ndarray]


@contextmanager
def _open_file(source: str | os.PathLike | bytes, failure: str, name: str | None = None) -> Iterator[_Source]:
    name = name or _describe(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.fspath(source):
            raise AudioDecodingError("the audio path is empty")
        if os.path.isdir(source):
            raise AudioDecodingError(f"audio path {name} is a folder, not an audio file")
        if not os.path.isfile(source):
            raise AudioDecodingError(f"audio file not found: {name}")
    handle = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else source
    try:
        opened = sf.SoundFile(handle)
    except Exception as err:  # libsndfile raises several error types for unreadable input
        raise AudioDecodingError(f"{failure} {name}: {err}") from err
    with opened:
        rate = _check_header_rate(opened.samplerate, name)
        _check_wav_complete(opened, name)

        def read(start: int, stop: int | None) -> np.ndarray:
            try:
                if start:
                    opened.seek(start)
                waveform = opened.read(-1 if stop is None else stop - start, dtype="float32", always_2d=True)
            except Exception as err:
                raise AudioDecodingError(f"cannot decode audio {name}: {err}") from err
            return waveform.mean(axis=1) if waveform.shape[1] > 1 else waveform[:, 0]

        yield _Source(name, rate, opened.frames, read)


def _array_source(array: Any, sampling_rate: Any, what: str, name: str) -> _Source:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        array = (array.float() if array.is_floating_point() else array).numpy()
    array = np.asarray(array)
    rate = check_sampling_rate(sampling_rate, what)
    _check_layout(array.shape)
    if array.size == 0:
        raise AudioDecodingError(f"audio {name} is empty (shape {array.shape})")
    # The time axis is the longer one (see `to_mono`); only the window read is converted.
    time_axis = 0 if array.ndim == 1 or array.shape[0] >= array.shape[1] else 1

    def read(start: int, stop: int | None) -> np.ndarray:
        window = array[start:stop] if time_axis == 0 else array[:, start:stop]
        window = _as_float32(window, name)
        return window if window.ndim == 1 else window.mean(axis=1 - time_axis)

    return _Source(name, rate, array.shape[time_axis], read)


@contextmanager
def _open(source: AudioSource, sampling_rate: Any, failure: str = "cannot decode audio") -> Iterator[_Source]:
    """Every accepted input form as a `_Source`; `sampling_rate` is that of a raw array."""
    name = _describe(source)
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        with _open_file(source, failure) as opened:
            yield opened
        return
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioDecodingError("an audio tuple must be (array, sampling_rate)")
        yield _array_source(
            source[0], source[1], "the sampling rate of the (array, sampling_rate) tuple", name
        )
        return
    if isinstance(source, Mapping):
        if source.get("array") is not None:
            if "sampling_rate" not in source:
                raise AudioDecodingError("an audio dict with 'array' also needs 'sampling_rate'")
            yield _array_source(
                source["array"], source["sampling_rate"], "the audio dict's 'sampling_rate'", name
            )
            return
        key = "bytes" if source.get("bytes") is not None else "path" if source.get("path") else None
        if key is not None:
            # Bytes are read first; a dict that also has a path is named by it.
            with _open_file(source[key], failure, name if source.get("path") else None) as opened:
                yield opened
            return
        raise AudioDecodingError(
            f"an audio dict needs 'array' + 'sampling_rate', 'bytes' or 'path'; got keys {sorted(source)}"
        )
    if isinstance(source, (np.ndarray, torch.Tensor)):
        yield _array_source(source, sampling_rate, "the sampling rate given with the audio array", name)
        return
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


def _seconds(value: Any, name: str, allow_zero: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        expected = "a number of seconds >= 0" if allow_zero else "None or a positive number of seconds"
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return float(value)


def _read_window(source: _Source, sampling_rate: int, start: int, limit: int | None) -> np.ndarray:
    """Samples [start, start + limit) at `sampling_rate` (limit None: to the end), reading and resampling
    only the frames they come from."""
    rate = source.sampling_rate
    if start == 0 and limit is None:
        return resample(source.read(0, None), rate, sampling_rate)
    length = resampled_length(source.frames, rate, sampling_rate)
    if start and start >= length:
        raise AudioDecodingError(
            f"audio {source.name}: offset {start / sampling_rate:.1f} s is at or past its end "
            f"({length / sampling_rate:.1f} s long)"
        )
    stop = length if limit is None else min(start + limit, length)
    if rate == sampling_rate:
        return source.read(start, stop)
    # Read from a frame where the two sample grids meet, with the filter's context on each side: the
    # window then holds the samples that resampling the whole file gives there.
    common = math.gcd(rate, sampling_rate)
    grid_source, grid_target = rate // common, sampling_rate // common
    context = -(-_RESAMPLING_CONTEXT * rate // min(rate, sampling_rate))
    first = max(0, start * rate // sampling_rate - context)
    first -= first % grid_source
    last = min(source.frames, -(-stop * rate // sampling_rate) + context)
    skipped = first // grid_source * grid_target
    return resample(source.read(first, last), rate, sampling_rate)[start - skipped : stop - skipped]


def load_audio(
    source: AudioSource,
    sampling_rate: int,
    source_sampling_rate: int | None = None,
    *,
    offset: float = 0.0,
    max_duration: float | None = None,
) -> np.ndarray:
    """Read any supported audio input as a float32 mono waveform at `sampling_rate`.

    `source` is a path, encoded bytes, an `(array, sampling_rate)` tuple, a dict as written by
    `datasets.Audio` (`array` + `sampling_rate`, or `bytes` / `path` as `Audio(decode=False)` gives;
    bytes are read first), or a raw array whose rate is given by `source_sampling_rate`. The torchcodec
    decoders of a decoding `Audio` column are refused, naming the fix (`undecoded_audio_fix`).
    Arrays hold float samples in [-1, 1] or integer PCM (int16, int32, int8, uint8), which is scaled
    to [-1, 1] by its full range, as soundfile reads integer files.

    `offset` and `max_duration` (seconds) select a window: only its frames are read from the file
    and resampled, so a long (or mislabelled) file costs what the window costs. Raises
    `AudioDecodingError` naming the input when it is missing, undecodable, empty, holds NaN / inf (in
    the part read), has a sampling rate outside MIN_SAMPLING_RATE..MAX_SAMPLING_RATE (1 kHz to
    384 kHz), float samples beyond MAX_FLOAT_PEAK (100: unscaled integer PCM), more than MAX_CHANNELS
    (32) channels or a square 2-D shape, or is a WAV file cut off before the data its header declares.
    """
    offset = _seconds(offset, "offset", allow_zero=True)
    max_duration = check_max_duration(max_duration)
    sampling_rate = check_sampling_rate(sampling_rate, "the sampling_rate to resample to")
    start = round(offset * sampling_rate)
    limit = None if max_duration is None else max(1, round(max_duration * sampling_rate))
    with _open(source, source_sampling_rate) as opened:
        waveform = _read_window(opened, sampling_rate, start, limit)
        name = opened.name
    if waveform.size == 0:
        raise AudioDecodingError(f"audio {name} is empty (0 samples)")
    # One pass over the samples: the peak is NaN or inf when any sample is.
    peak = float(np.abs(waveform).max())
    if not math.isfinite(peak):
        raise AudioDecodingError(f"audio {name} holds NaN or infinite samples")
    if peak > MAX_FLOAT_PEAK:
        raise AudioDecodingError(
            f"audio {name}: samples reach {peak:g}, far outside [-1, 1]: integer PCM cast to float without "
            "scaling? divide int16 samples by 32768 (or pass the int16 array itself, which is scaled)"
        )
    return waveform


def audio_length(source: AudioSource, sampling_rate: int, source_sampling_rate: int | None = None) -> int:
    """Samples `load_audio(source, sampling_rate, ...)` returns without a window, from the file header
    (no decoding); the same input checks (rate, readability) apply."""
    sampling_rate = check_sampling_rate(sampling_rate, "the sampling_rate to resample to")
    with _open(source, source_sampling_rate) as opened:
        return resampled_length(opened.frames, opened.sampling_rate, sampling_rate)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, read from the file header (no full decode).

    Raises AudioDecodingError when the header cannot be read (not a sound file, an empty file), gives
    a sampling rate outside MIN_SAMPLING_RATE..MAX_SAMPLING_RATE, or describes no samples: the
    manifest and IEMOCAP loaders call it to reject such files with the same words before training,
    rather than when a batch is read.
    """
    with _open_file(os.fspath(path), failure="unreadable audio header of") as opened:
        if opened.frames <= 0:
            raise AudioDecodingError(f"audio file {path} is empty (0 frames)")
        return opened.frames / opened.sampling_rate


def check_long_enough(waveform: np.ndarray, min_samples: int | None, sampling_rate: int) -> None:
    """Raise AudioDecodingError when `waveform` is shorter than an encoder's `min_samples`."""
    if min_samples is not None and waveform.shape[0] < min_samples:
        raise AudioDecodingError(
            f"audio too short: {waveform.shape[0]} samples ({waveform.shape[0] / sampling_rate * 1000:.0f} ms "
            f"at {sampling_rate} Hz); the audio encoder needs at least {min_samples}"
        )


def crop_start(
    length: int,
    max_samples: int | None,
    random: bool = True,
    generator: torch.Generator | None = None,
) -> int:
    """First sample of the window of at most `max_samples` kept of `length`: a random start in
    training, the centre otherwise; 0 (and no draw) when the whole fits.

    The random start is drawn from torch's RNG so that `transformers.set_seed` (and per-worker
    seeding in the DataLoader) makes crops reproducible.
    """
    if max_samples is None or length <= max_samples:
        return 0
    excess = length - max_samples
    if random:
        return int(torch.randint(0, excess + 1, (1,), generator=generator).item())
    return excess // 2


def load_window(
    source: AudioSource,
    sampling_rate: int,
    max_samples: int | None,
    source_sampling_rate: int | None = None,
    *,
    random: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, int]:
    """`load_audio` cropped to at most `max_samples` at `sampling_rate` (a window starting at
    `crop_start`: random in training, the centre otherwise), and the length of the whole.

    The length comes from the header and only the window is read and resampled, so a long clip, or
    one whose header lies about its rate, costs what the window costs."""
    if max_samples is None:
        waveform = load_audio(source, sampling_rate, source_sampling_rate)
        return waveform, waveform.shape[0]
    length = audio_length(source, sampling_rate, source_sampling_rate)
    start = crop_start(length, max_samples, random=random, generator=generator)
    if length <= max_samples:
        return load_audio(source, sampling_rate, source_sampling_rate), length
    window = load_audio(
        source,
        sampling_rate,
        source_sampling_rate,
        offset=start / sampling_rate,
        max_duration=max_samples / sampling_rate,
    )
    return window, length


def crop_waveform(
    waveform: np.ndarray,
    max_samples: int | None,
    random: bool = True,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Crop a decoded waveform to at most `max_samples`, at `crop_start`."""
    if max_samples is None:
        return waveform
    start = crop_start(waveform.shape[0], max_samples, random=random, generator=generator)
    return waveform[start : start + max_samples]
