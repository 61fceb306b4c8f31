"""Batches of audio + transcript examples, as the HF audio-classification example builds them: a
per-split transform that decodes and crops (`DecodeAndCrop`), and one collator that featurizes and
pads (`DataCollatorForAudioText`). Training and evaluation differ only in their splits' transforms,
so the Trainer needs one collator and nothing is swapped between them."""

from __future__ import annotations

import hashlib
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .audio import (
    AudioDecodingError,
    check_long_enough,
    check_max_duration,
    check_sampling_rate,
    load_audio,
    load_window,
    undecoded_audio_fix,
)
from .configuration_rules import closest
from .processing_turbo import TurboProcessor, check_text_length, check_transcripts


@contextmanager
def _naming(name: str) -> Iterator[None]:
    """Audio errors raised inside say which example they are about."""
    try:
        yield
    except AudioDecodingError as err:
        raise AudioDecodingError(f"example {name}: {err}") from err


def check_audio_column(dataset: Any, audio_column: str = "audio", name: str = "dataset") -> None:
    """Raise if `dataset`'s audio column is a `datasets.Audio` feature that decodes: datasets would decode
    every row through torchcodec before `DecodeAndCrop` sees it. `Audio(decode=False)` keeps the
    {"path", "bytes"} dicts that turbo_hf reads itself (soundfile + soxr, as for paths)."""
    feature = getattr(dataset, "features", {}).get(audio_column)
    # Checked by name: `datasets.Audio` without importing datasets here.
    if type(feature).__name__ == "Audio" and getattr(feature, "decode", False):
        raise ValueError(
            f"{name}: the {audio_column!r} column is a datasets Audio feature that decodes rows with "
            f"torchcodec; keep it undecoded, {undecoded_audio_fix(audio_column)}, "
            "and turbo_hf decodes each row itself"
        )


def _audio_key(audio: Any) -> bytes:
    """What tells a row's audio apart for its crop: the bytes or samples if the row holds them, else the path."""
    if isinstance(audio, Mapping):
        for name in ("bytes", "array", "path"):
            if audio.get(name) is not None:
                return _audio_key(audio[name])
    if isinstance(audio, (bytes, bytearray)):
        return bytes(audio)
    if isinstance(audio, (str, os.PathLike)):
        return os.fsencode(audio)
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    return np.ascontiguousarray(audio).tobytes()


@dataclass
class DecodeAndCrop:
    """A `datasets` transform (`split.with_transform(DecodeAndCrop(...))`) that decodes each row's
    audio to a float32 mono waveform at `sampling_rate` and crops it to `max_duration` seconds.

    With `random_crop` (training) and a `seed`, each row's window is a function of (seed, epoch, the
    row's audio: its path, or its bytes / samples): new every epoch (`set_epoch`, which TurboTrainer
    calls), and the same whatever order, batch or worker reads the row, so a run resumed from a
    checkpoint reads the windows the uninterrupted run would have read. With `seed=None` the window is
    drawn from torch's global RNG each time a row is read (not restored on resume). Without
    `random_crop` (evaluation) the centre is kept; `max_duration=None` keeps the whole utterance.
    The window is chosen from the file header's length and only its frames are read and resampled
    (`load_window`), so a long file costs `max_duration` seconds of
    memory. Rows stay undecoded in the dataset, so thousands of utterances cost no memory. The audio
    column holds paths or `datasets.Audio(decode=False)` dicts (`check_audio_column`).
    `max_duration` must be None or a positive number of seconds (an error at construction).
    """

    sampling_rate: int
    max_duration: float | None = None
    random_crop: bool = False
    audio_column: str = "audio"
    seed: int | None = None
    # A tensor, moved to shared memory by `set_epoch`: persistent DataLoader workers see the new epoch.
    _epoch: torch.Tensor = field(
        default_factory=lambda: torch.zeros((), dtype=torch.int64), init=False, repr=False, compare=False
    )

    @property
    def epoch(self) -> int:
        """The epoch whose random crops `seed` draws (0 until `set_epoch`)."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops `seed` draws."""
        if not self._epoch.is_shared():
            self._epoch.share_memory_()
        self._epoch.fill_(int(epoch))

    def _crop_generator(self, audio: Any) -> torch.Generator | None:
        if not self.random_crop or self.seed is None:
            return None
        digest = hashlib.blake2b(f"{self.seed}/{self.epoch}/".encode(), digest_size=8)
        digest.update(_audio_key(audio))
        return torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little"))

    def __post_init__(self):
        self.sampling_rate = check_sampling_rate(self.sampling_rate, "DecodeAndCrop.sampling_rate")
        if not isinstance(self.random_crop, bool):
            raise TypeError(f"DecodeAndCrop.random_crop must be True or False; got {self.random_crop!r}")
        self.max_duration = check_max_duration(
            self.max_duration, "DecodeAndCrop.max_duration", self.sampling_rate
        )

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        limit = None if self.max_duration is None else int(round(self.max_duration * self.sampling_rate))
        if self.audio_column not in batch:
            raise KeyError(
                f"DecodeAndCrop: the rows have no {self.audio_column!r} column; found {sorted(batch)} "
                "(pass audio_column=...)"
            )
        names = batch.get("id") or [f"#{index}" for index in range(len(batch[self.audio_column]))]
        if len(names) != len(batch[self.audio_column]):
            raise ValueError(
                f"DecodeAndCrop: the batch holds {len(batch[self.audio_column])} {self.audio_column!r} "
                f"values but {len(names)} 'id' values; every column of a batch has one value per row"
            )
        batch[self.audio_column] = [
            self._decode_and_crop(audio, limit, name, self._crop_generator(audio))
            for audio, name in zip(batch[self.audio_column], names)
        ]
        return batch

    def _decode_and_crop(
        self, audio: Any, limit: int | None, name: str, generator: torch.Generator | None
    ) -> np.ndarray:
        # Crop before resampling (load_window): the start is drawn from the length the header gives,
        # and only that window is read and resampled.
        with _naming(name):
            waveform, _ = load_window(
                audio, self.sampling_rate, limit, random=self.random_crop, generator=generator
            )
        return waveform


@dataclass
class DataCollatorForAudioText:
    """Collate examples `{"audio": ..., "text": str, "label": int}` into model inputs.

    `audio` is a waveform at the processor's rate (what `DecodeAndCrop` writes) or any input of
    `turbo_hf.audio.load_audio` (a path, bytes, an `array` + `sampling_rate` dict), decoded here whole.
    Each utterance must have `min_samples` samples; the processor then featurizes and pads the batch.

    Args:
        processor: the model's TurboProcessor.
        max_text_length: transcripts are truncated to this many tokens (None: to the tokenizer's
            `model_max_length`, see `TurboProcessor`).
        min_samples: fewest samples an utterance may have (the model's `receptive_field_samples`);
            a shorter one is an error naming the example.
        audio_column, text_column, label_column: field names in the examples.
        num_labels: the model's number of classes (`model.config.num_labels`): a label outside
            0..num_labels-1 is an error naming the example, before the loss sees it. Negative labels
            (datasets' -1 for a missing ClassLabel value) are refused even without it.
    """

    processor: TurboProcessor
    max_text_length: int | None = 128
    min_samples: int | None = None
    audio_column: str = "audio"
    text_column: str = "text"
    label_column: str = "label"
    num_labels: int | None = None

    def __post_init__(self):
        self.max_text_length = check_text_length(
            self.max_text_length, self.processor.tokenizer, "DataCollatorForAudioText.max_text_length"
        )
        valid = (
            isinstance(self.num_labels, int) and not isinstance(self.num_labels, bool) and self.num_labels > 0
        )
        if self.num_labels is not None and not valid:
            raise ValueError(
                f"DataCollatorForAudioText.num_labels must be None or a positive integer; got {self.num_labels!r}"
            )

    def _field(self, example: Mapping[str, Any], name: str, position: int) -> Any:
        if name not in example:
            raise KeyError(f"example {position} of the batch has no {name!r} field; found {sorted(example)}")
        return example[name]

    def _waveform(self, example: Mapping[str, Any], position: int) -> np.ndarray:
        audio = self._field(example, self.audio_column, position)
        name = self._name(example, position)
        rate = self.processor.sampling_rate
        if isinstance(audio, torch.Tensor):  # decoded by the caller, as a numpy waveform would be
            audio = audio.detach().cpu().float().numpy()
        with _naming(name):
            waveform = audio if isinstance(audio, np.ndarray) else load_audio(audio, rate)
            check_long_enough(waveform, self.min_samples, rate)
        return waveform

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        waveforms = [self._waveform(example, position) for position, example in enumerate(examples)]
        # None is an utterance without a transcript, encoded like the empty transcript.
        texts = [self._field(example, self.text_column, i) for i, example in enumerate(examples)]
        texts = ["" if text is None else text for text in texts]
        check_transcripts(texts, lambda position: f"example {self._name(examples[position], position)}")
        batch = dict(
            self.processor(
                audio=waveforms,
                text=texts,
                sampling_rate=self.processor.sampling_rate,
                return_tensors="pt",
                max_length=self.max_text_length,
            )
        )
        labels = [example.get(self.label_column) for example in examples]
        unlabelled = [position for position, label in enumerate(labels) if label is None]
        if len(unlabelled) == len(labels):  # prediction: no labels at all
            self._check_no_label_elsewhere(examples)
            return batch
        if unlabelled:
            # A partly labelled batch would train on the contrastive loss alone without a word.
            raise ValueError(
                f"examples {unlabelled} of the batch have no {self.label_column!r} value while the others "
                "do; label every example, or none for prediction"
            )
        wrong = [
            label for label in labels if isinstance(label, bool) or not isinstance(label, numbers.Integral)
        ]
        if wrong:
            raise TypeError(
                f"{self.label_column!r} must hold class indices (integers); got {wrong[:3]!r}. "
                "Encode string labels first, e.g. with datasets.ClassLabel"
            )
        labels = [int(label) for label in labels]
        self._check_label_range(examples, labels)
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch

    @staticmethod
    def _name(example: Mapping[str, Any], position: int) -> str:
        return str(example.get("id", f"#{position} of the batch"))

    def _check_no_label_elsewhere(self, examples: Sequence[Mapping[str, Any]]) -> None:
        """A batch without `label_column` is for prediction, unless its examples hold labels under a
        near name ('labels' for 'label'): a misspelt column would train on the contrastive loss alone."""
        fields = set().union(*(example.keys() for example in examples)) - {
            self.audio_column,
            self.text_column,
        }
        near = closest(self.label_column, fields, cutoff=0.8)
        if near is not None:
            raise KeyError(
                f"no example of the batch has a {self.label_column!r} field, but they have {near!r}: pass "
                f"label_column={near!r} (examples without labels are for prediction)"
            )

    def _check_label_range(self, examples: Sequence[Mapping[str, Any]], labels: list[int]) -> None:
        top = self.num_labels
        outside = [i for i, label in enumerate(labels) if label < 0 or (top is not None and label >= top)]
        if not outside:
            return
        position, label = outside[0], labels[outside[0]]
        name = examples[position].get("id", f"#{position} of the batch")
        valid = f"0..{top - 1} (num_labels={top})" if top is not None else "indices >= 0"
        missing = " (-1 is how datasets marks a missing ClassLabel value)" if label == -1 else ""
        more = f"; {len(outside) - 1} more in this batch" if len(outside) > 1 else ""
        raise ValueError(
            f"example {name}: {self.label_column!r} {label} is not one of the model's classes, "
            f"{valid}{missing}{more}"
        )


__all__ = ["DataCollatorForAudioText", "DecodeAndCrop", "check_audio_column"]
