"""TurboProcessor: the audio encoder's feature extractor and the text encoder's tokenizer as one."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from transformers import AutoConfig, AutoFeatureExtractor, AutoTokenizer, BatchFeature, ProcessorMixin

from .audio import AudioDecodingError, check_sampling_rate, load_audio
from .configuration_turbo import AUDIO_WINDOW_STEP_FRAMES, AUDIO_WINDOWS
from .model_folders import check_processor_folder, local_folder

# Whisper-style extractors pad every input to a fixed window (30 s); the others pad to the longest.
_FIXED_LENGTH_ATTRIBUTE = "n_samples"
# Tokenizers without a length limit report a huge `model_max_length` (int(1e30)).
_NO_LIMIT = 1_000_000
# RoBERTa-style position tables start at pad_token_id + 1 = 2, so they hold two positions fewer than their size.
_POSITION_OFFSET = 2


def text_length_limit(tokenizer, text_config=None) -> int | None:
    """Longest transcript the text encoder takes: the tokenizer's limit and, given the text encoder's
    config, its position table's; None when neither is known."""
    limits = [tokenizer.model_max_length] if tokenizer.model_max_length < _NO_LIMIT else []
    positions = getattr(text_config, "max_position_embeddings", None) or getattr(
        text_config, "n_positions", None
    )
    if positions:
        limits.append(positions - _POSITION_OFFSET)
    return min(limits) if limits else None


def check_text_length(value: Any, tokenizer, name: str = "max_length") -> int | None:
    """`value` as a number of tokens that leaves room for at least one word piece beside the special
    tokens the tokenizer adds ([CLS] and [SEP] for BERT); None (no limit given) passes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer number of tokens or None; got {value!r}")
    special = tokenizer.num_special_tokens_to_add(pair=False)
    if value <= special:
        raise ValueError(
            f"{name}={value} leaves no room for a transcript: the tokenizer adds {special} special "
            f"token(s); pass at least {special + 1}, or None for the text encoder's limit"
        )
    return int(value)


def check_transcripts(texts: Sequence[Any], name_of: Callable[[int], str] = "text[{}]".format) -> None:
    """Each transcript is a string (None, an utterance without one, is the caller's to replace);
    `name_of(position)` names the one that is not."""
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            where = name_of(position)
            raise TypeError(f"{where}: a transcript must be a string; got {type(text).__name__} {text!r:.60}")


class TurboProcessor(ProcessorMixin):
    """Turns raw audio and transcripts into the inputs of [`TurboForAudioTextClassification`].

    The feature extractor's attention mask is returned as `audio_attention_mask` (the text has its
    own `attention_mask`), and it is always returned: the model pools over valid frames with it even
    for encoders that take no mask (wav2vec2-base).

    `audio_window` is the model's `TurboConfig.audio_window`, saved with the processor: the one place
    where it acts. For a fixed-window extractor (Whisper) `"full"` pads every clip to the pretrained
    window and `"batch"` to the batch's longest clip, rounded up to whole seconds; other extractors
    pad to the batch's longest clip either way.
    """

    def __init__(self, feature_extractor, tokenizer, audio_window: str = "full"):
        super().__init__(feature_extractor, tokenizer)
        if audio_window not in AUDIO_WINDOWS:
            raise ValueError(
                f"TurboProcessor.audio_window must be one of {AUDIO_WINDOWS}, got {audio_window!r}"
            )
        self.audio_window = audio_window

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> TurboProcessor:
        """As `ProcessorMixin.from_pretrained`, after checking that a local folder exists and holds the
        processor's files (missing ones are named; transformers would blame sentencepiece)."""
        folder = local_folder(pretrained_model_name_or_path, kwargs.get("subfolder", ""), what="processor")
        if folder is not None:
            check_processor_folder(folder)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_encoders_pretrained(
        cls,
        audio_model_name_or_path: str,
        text_model_name_or_path: str,
        audio_window: str = "full",
        **kwargs,
    ) -> TurboProcessor:
        """Load the feature extractor of the audio encoder and the tokenizer of the text encoder;
        `audio_window` must be the model's (`model.config.audio_window`)."""
        feature_extractor = AutoFeatureExtractor.from_pretrained(audio_model_name_or_path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(text_model_name_or_path, **kwargs)
        if tokenizer.pad_token is None:
            # GPT-2 and other decoder-only tokenizers ship without a padding token.
            tokenizer.pad_token = tokenizer.eos_token
        # Saved with the processor, so that transcripts are truncated to what the text encoder takes
        # even where its tokenizer declares no limit.
        limit = text_length_limit(tokenizer, AutoConfig.from_pretrained(text_model_name_or_path, **kwargs))
        if limit is not None:
            tokenizer.model_max_length = limit
        return cls(feature_extractor=feature_extractor, tokenizer=tokenizer, audio_window=audio_window)

    def check_model_config(self, config) -> None:
        """Raise ValueError unless this processor featurizes as the model of `config` was trained."""
        model_window = getattr(config, "audio_window", "full")
        if model_window != self.audio_window:
            raise ValueError(
                f"the processor featurizes with audio_window={self.audio_window!r} but the model was configured "
                f"with audio_window={model_window!r}: use the processor saved with the model, or build one "
                f"with TurboProcessor(..., audio_window={model_window!r})"
            )

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def audio_input_name(self) -> str:
        return self.feature_extractor.model_input_names[0]

    @property
    def model_input_names(self) -> list[str]:
        return [self.audio_input_name, "audio_attention_mask", *self.tokenizer.model_input_names]

    def __call__(
        self,
        audio: np.ndarray | Sequence[np.ndarray] | None = None,
        text: str | Sequence[str] | None = None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        max_length: int | None = None,
        truncation: bool = True,
        **kwargs,
    ) -> BatchFeature:
        """Featurize audio (1-D arrays) and tokenize text; either or both.

        `sampling_rate` is the rate of the given arrays; they are resampled to the feature
        extractor's rate when it differs (same soxr path as training). Without it, the arrays are
        taken to be at the feature extractor's rate already. Integer PCM arrays are scaled to [-1, 1]
        (`turbo_hf.audio.load_audio`).

        Transcripts are truncated to `max_length` tokens, by default to the tokenizer's
        `model_max_length` (which `from_encoders_pretrained` caps at the text encoder's position
        table, and training sets to `max_text_length`), so that any transcript fits the text
        encoder; `truncation=False` keeps them whole. An empty list of audio or text is a ValueError.
        """
        if audio is None and text is None:
            raise ValueError("TurboProcessor needs `audio`, `text` or both")
        for name, value in (("audio", audio), ("text", text)):
            if isinstance(value, (list, tuple)) and not value:
                raise ValueError(f"TurboProcessor: `{name}` is an empty list; pass at least one item")
        if isinstance(text, str):
            text = [text]
        if audio is not None and text is not None:
            clips = 1 if isinstance(audio, np.ndarray) and audio.ndim == 1 else len(audio)
            if clips != len(text):
                raise ValueError(
                    f"TurboProcessor: {clips} audio clip(s) but {len(text)} transcript(s); each clip is paired "
                    "with the transcript at the same position"
                )
        batch = {}
        if audio is not None:
            batch.update(self._featurize(audio, sampling_rate, return_tensors, **kwargs))
        if text is not None:
            check_transcripts(text)
            max_length = check_text_length(max_length, self.tokenizer)
            if truncation and max_length is None:
                max_length = text_length_limit(self.tokenizer)
            encoded = self.tokenizer(
                list(text),
                padding=True,
                truncation=truncation and max_length is not None,
                max_length=max_length,
                return_tensors=return_tensors,
            )
            batch.update(encoded)
        return BatchFeature(batch, tensor_type=return_tensors)

    def _featurize(self, audio, sampling_rate, return_tensors, **kwargs) -> dict:
        if sampling_rate is None:
            sampling_rate = self.sampling_rate
        sampling_rate = check_sampling_rate(
            sampling_rate, "TurboProcessor's sampling_rate (of the audio arrays)"
        )
        if isinstance(audio, np.ndarray) and audio.ndim == 1:
            audio = [audio]
        waveforms = []
        for index, waveform in enumerate(audio):
            try:
                waveforms.append(load_audio(np.asarray(waveform), self.sampling_rate, sampling_rate))
            except AudioDecodingError as err:
                raise AudioDecodingError(f"audio item {index} of the batch: {err}") from err
        features = self.feature_extractor(
            waveforms,
            sampling_rate=self.sampling_rate,
            return_attention_mask=True,
            return_tensors=return_tensors,
            **self._padding(waveforms),
            **kwargs,
        )
        features = dict(features)
        features["audio_attention_mask"] = features.pop("attention_mask")
        return features

    def _padding(self, waveforms: list[np.ndarray]) -> dict:
        """Padding arguments of the feature extractor for this batch (see `audio_window`)."""
        extractor = self.feature_extractor
        if not hasattr(extractor, _FIXED_LENGTH_ATTRIBUTE):
            return {"padding": "longest"}
        if self.audio_window == "full":
            return {"padding": "max_length"}
        step = AUDIO_WINDOW_STEP_FRAMES * extractor.hop_length
        longest = max(waveform.shape[0] for waveform in waveforms)
        window = min(-(-longest // step) * step, extractor.n_samples)
        return {"padding": "max_length", "max_length": window}


__all__ = ["TurboProcessor", "text_length_limit"]
