"""Shared fixtures: a ModelTester-style helper for tiny Turbo models, and wav writing."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from transformers import WhisperFeatureExtractor  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import turbo_hf  # noqa: E402, F401  (registers the Auto classes)
from turbo_hf import TurboConfig, TurboForAudioTextClassification, TurboProcessor  # noqa: E402
from turbo_hf.tiny_encoders import (  # noqa: E402
    tiny_audio_config,
    tiny_feature_extractor,
    tiny_text_config,
    tiny_tokenizer,
)

hf_logging.set_verbosity_error()
torch.set_num_threads(2)


class TurboModelTester:
    """Builds a tiny Turbo config, model, processor and matching inputs (hidden 32, 2 layers)."""

    def __init__(
        self,
        audio_type: str = "wav2vec2",
        text_type: str = "bert",
        num_labels: int = 3,
        whisper_seconds: int | None = None,
        **config_kwargs,
    ):
        """`whisper_seconds`: a tiny Whisper whose pretrained window is that long (default 1 s)."""
        self.audio_type, self.text_type, self.num_labels = audio_type, text_type, num_labels
        self.tokenizer = tiny_tokenizer(text_type, words=["hello", "world", "happy", "sad", "angry"])
        self.feature_extractor = tiny_feature_extractor(audio_type)
        audio_overrides = {} if audio_type == "whisper" else {"mask_time_prob": 0.0}
        if whisper_seconds is not None:
            self.feature_extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=whisper_seconds)
            audio_overrides["max_source_positions"] = 50 * whisper_seconds  # 20 ms encoder frames
        audio_overrides.update(config_kwargs.pop("audio_overrides", {}))
        config_kwargs.setdefault("projection_dim", 16)
        self.config = TurboConfig(
            audio_config=tiny_audio_config(audio_type, **audio_overrides),
            text_config=tiny_text_config(text_type, vocab_size=len(self.tokenizer)),
            num_labels=num_labels,
            **config_kwargs,
        )
        self.processor = TurboProcessor(
            feature_extractor=self.feature_extractor,
            tokenizer=self.tokenizer,
            audio_window=self.config.audio_window,
        )

    def model(self, seed: int = 0) -> TurboForAudioTextClassification:
        torch.manual_seed(seed)
        return TurboForAudioTextClassification(self.config)

    def save_classifier(self, folder, labels: list[str], seed: int = 0) -> str:
        """Save a model with named labels and its processor, as training would, for loading tests."""
        model = self.model(seed)
        model.config.id2label = dict(enumerate(labels))
        model.config.label2id = {label: index for index, label in enumerate(labels)}
        model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        return str(folder)

    def waveforms(self, seconds=(1.0, 0.6, 0.8), seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal(int(16000 * s)).astype(np.float32) for s in seconds]

    def inputs(self, batch_size: int = 3, with_labels: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
        seconds = [1.0 - 0.15 * (i % 3) for i in range(batch_size)]
        texts = ["hello world", "happy", "sad and angry world", "hello"] * batch_size
        batch = dict(
            self.processor(audio=self.waveforms(seconds, seed), text=texts[:batch_size], sampling_rate=16000)
        )
        if with_labels:
            batch["labels"] = torch.arange(batch_size) % self.num_labels
        return batch


@pytest.fixture
def tester() -> TurboModelTester:
    return TurboModelTester()


@pytest.fixture
def write_wav(tmp_path):
    """Write a wav file (sine by default) and return its path."""

    def _write(
        name: str, seconds: float = 1.0, sampling_rate: int = 16000, channels: int = 1, frequency=220.0
    ):
        t = np.arange(int(seconds * sampling_rate)) / sampling_rate
        wave = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
        data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data, sampling_rate)
        return path

    return _write
