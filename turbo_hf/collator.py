"""DataCollatorForAudioText: decode, crop, featurize and pad a batch of audio + transcript examples."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .audio import AudioDecodingError, check_long_enough, crop_waveform, load_audio
from .processing_turbo import TurboProcessor


@dataclass
class DataCollatorForAudioText:
    """Collate examples `{"audio": ..., "text": str, "label": int}` into model inputs.

    Audio stays undecoded in the dataset (a path, bytes, or an `array` + `sampling_rate` dict) and is
    read here, so a dataset of thousands of utterances costs no memory up front. In training each
    utterance longer than `max_duration` seconds is cropped to a random window; in evaluation the
    whole utterance is kept unless `eval_max_duration` asks for a centre crop.

    Args:
        processor: the model's TurboProcessor.
        max_duration: longest audio in training, in seconds (None: no crop).
        training: random crops when True; set False for evaluation and prediction.
        eval_max_duration: longest audio outside training, centre-cropped (None: whole utterance).
        max_text_length: transcripts are truncated to this many tokens.
        min_samples: fewest samples an utterance may have after cropping (the model's
            `receptive_field_samples`); a shorter one is an error naming the example.
        audio_column, text_column, label_column: field names in the examples.
    """

    processor: TurboProcessor
    max_duration: float | None = None
    training: bool = True
    eval_max_duration: float | None = None
    max_text_length: int | None = 128
    min_samples: int | None = None
    audio_column: str = "audio"
    text_column: str = "text"
    label_column: str = "label"

    def _waveform(self, example: Mapping[str, Any], position: int):
        if self.audio_column not in example:
            raise KeyError(
                f"example {position} of the batch has no {self.audio_column!r} field; found {sorted(example)}"
            )
        sampling_rate = self.processor.sampling_rate
        try:
            waveform = load_audio(example[self.audio_column], sampling_rate)
            check_long_enough(waveform, self.min_samples, sampling_rate)
        except AudioDecodingError as err:
            name = example.get("id", f"#{position} of the batch")
            raise AudioDecodingError(f"example {name}: {err}") from err
        limit = self.max_duration if self.training else self.eval_max_duration
        max_samples = None if limit is None else int(round(limit * sampling_rate))
        return crop_waveform(waveform, max_samples, random=self.training)

    def _text(self, example: Mapping[str, Any], position: int) -> str:
        if self.text_column not in example:
            raise KeyError(
                f"example {position} of the batch has no {self.text_column!r} field; found {sorted(example)}"
            )
        # None is an utterance without a transcript, encoded like the empty transcript.
        return example[self.text_column] or ""

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        waveforms = [self._waveform(example, position) for position, example in enumerate(examples)]
        texts = [self._text(example, position) for position, example in enumerate(examples)]
        batch = self.processor(
            audio=waveforms,
            text=texts,
            sampling_rate=self.processor.sampling_rate,
            return_tensors="pt",
            max_length=self.max_text_length,
        )
        labels = [example.get(self.label_column) for example in examples]
        unlabelled = [position for position, label in enumerate(labels) if label is None]
        if len(unlabelled) == len(labels):  # prediction: no labels at all
            return dict(batch)
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
        batch["labels"] = torch.tensor([int(label) for label in labels], dtype=torch.long)
        return dict(batch)


__all__ = ["DataCollatorForAudioText"]
