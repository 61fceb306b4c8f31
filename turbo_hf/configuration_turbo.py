"""TurboConfig: an audio encoder config, a text encoder config and the Turbo hyper-parameters."""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import logging

logger = logging.get_logger(__name__)

LOSS_MODES = ("turbo", "cross", "vanilla", "in_modal")
# Modes that encode every training batch twice, with independent dropout masks.
TWO_VIEW_LOSS_MODES = frozenset({"turbo", "in_modal"})
TEXT_POOLINGS = ("cls", "mean", "last")
CLASSIFY_ON = ("first", "both")
AUDIO_WINDOWS = ("full", "batch")
FEATURE_NORMS = (None, "batch")
DUPLICATE_NEGATIVES = ("keep", "mask")
# audio_window="batch" rounds the batch's longest clip up to a whole number of these log-mel frames:
# 100 frames are 1 s of Whisper's 10 ms hop and 50 encoder positions (conv2 halves the frames, so the
# count must be even). Whole seconds keep the number of distinct input shapes at 30 at most (kernel
# caches, autotuners and compiled graphs are per shape) for at most 1 s of padding per batch.
AUDIO_WINDOW_STEP_FRAMES = 100

# Encoder config attributes that hold a dropout probability, across the supported families
# (wav2vec2/HuBERT/WavLM/data2vec-audio, Whisper, BERT/RoBERTa, GPT-2). `dropout` is pushed into
# every one a sub-config has, so one number controls the noise that makes the two Turbo views differ.
_ENCODER_DROPOUT_ATTRIBUTES = (
    "hidden_dropout",
    "attention_dropout",
    "activation_dropout",
    "feat_proj_dropout",
    "dropout",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
)
_ENCODER_LAYERDROP_ATTRIBUTES = ("layerdrop", "encoder_layerdrop")
# Audio encoders pretrained without dropout: by default they keep their own settings, since dropout
# they never saw makes two views of one clip almost unrelated (issue 15: cosine 0.06-0.11 at 0.05-0.2).
_PRETRAINED_WITHOUT_DROPOUT = frozenset({"whisper"})

# Decoder-only text encoders see only the left context at the first token, so their utterance
# embedding is the last real token, not the first.
_CAUSAL_TEXT_MODEL_TYPES = frozenset(
    {
        "gpt2",
        "gpt_neo",
        "gpt_neox",
        "gptj",
        "opt",
        "bloom",
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "phi",
        "phi3",
    }
)


@strict
class TurboConfig(PreTrainedConfig):
    r"""
    Configuration of a [`TurboForAudioTextClassification`]: two encoder configs plus every
    hyper-parameter of Turbo ("Turbo your multi-modal classification with contrastive learning",
    Interspeech 2023).

    Args:
        audio_config (`PreTrainedConfig` or `dict`, *optional*):
            Config of the audio encoder (`wav2vec2`, `hubert`, `wavlm`, `data2vec-audio` or
            `whisper`, whose encoder alone is used). Defaults to a wav2vec2-base config.
        text_config (`PreTrainedConfig` or `dict`, *optional*):
            Config of the text encoder (`bert`, `roberta`, `gpt2`, ...). Defaults to bert-base.
        projection_dim (`int`, defaults to 256):
            Size d of the joint space that the linear projections FC_a and FC_t map to.
        dropout (`float`, defaults to 0.2):
            Dropout after the projections (the paper's p). It is also the default of the dropout pushed
            into the encoders that were pretrained with dropout (wav2vec2 family, text encoders): their
            hidden / attention / activation / feature-projection dropouts. This noise is what makes
            Turbo's two views of a batch differ.
        encoder_dropout (`float`, *optional*):
            Dropout pushed into both encoders instead of their defaults (`encoder_dropout=0.2`: the
            paper's 0.2 everywhere, Whisper included). `-1` leaves both encoders' settings untouched.
        audio_encoder_dropout (`float`, *optional*):
            Dropout pushed into the audio encoder; wins over `encoder_dropout`. `-1` leaves it untouched.
            Default (None, with `encoder_dropout` None): encoders pretrained without dropout (Whisper)
            keep their own settings (0), the others get `dropout`.
        text_encoder_dropout (`float`, *optional*):
            Dropout pushed into the text encoder; wins over `encoder_dropout`. `-1` leaves it untouched.
            Default: `dropout`.
        encoder_layerdrop (`float`, defaults to 0.0):
            LayerDrop pushed into the audio encoder. One skip decision per forward would be shared
            by both views (they run as one batch) and breaks DDP with gradient checkpointing, so it
            is off by default. `-1` leaves the encoder's setting untouched.
        loss_mode (`str`, defaults to `"turbo"`):
            `"turbo"`: two views, CE + the six InfoNCE terms. `"cross"`: one view, CE + one
            cross-modal InfoNCE (CLAP-like). `"vanilla"`: one view, CE only. `"in_modal"`: two views,
            CE + the two in-modal terms InfoNCE(a1, a2) + InfoNCE(t1, t2) (an ablation).
        ce_weight (`float`, defaults to 0.5):
            lambda in `loss = lambda * CE + (1 - lambda) * contrastive`.
        temperature (`float`, defaults to 0.05):
            tau, the temperature of the cosine similarities inside InfoNCE.
        text_pooling (`str`, *optional*):
            `"cls"` (first token), `"mean"` (masked mean) or `"last"` (last real token). Defaults
            to `"last"` for decoder-only text encoders (GPT-2 ...) and `"cls"` otherwise.
        classify_on (`str`, defaults to `"first"`):
            `"first"`: the classifier sees view 1 only (the paper). `"both"`: CE is averaged
            over both views in training.
        class_weights (`list[float]` or `str`, *optional*):
            Weights of the classes in the cross-entropy, one positive number per class in label id
            order (`F.cross_entropy(weight=...)`): rare classes can count more, as UA weighs every class
            alike. `"balanced"`: inverse frequency of the training split, which the recipes turn into
            numbers before the model is built (`turbo_hf.losses.balanced_class_weights`), so a saved
            model holds the numbers it was trained with. None (default): every class weighs 1.
        audio_window (`str`, defaults to `"full"`):
            What a fixed-window feature extractor (Whisper: 30 s) pads to. `"full"`: its pretrained
            window, exactly as the pretrained model. `"batch"`: the batch's longest clip rounded up to
            whole seconds (`AUDIO_WINDOW_STEP_FRAMES`), capped at the window; the encoder then runs with
            the matching slice of its positional embeddings. Much faster on short clips, but the
            encoder no longer sees the trailing silence it was pretrained with. The processor saved
            with the model applies it; other extractors pad to the batch's longest clip either way.
        feature_norm (`str`, *optional*):
            `"batch"`: normalise the pooled audio and text features over the batch (BatchNorm1d without
            affine parameters; running statistics in evaluation) before each projection. None (default):
            as in the paper.
        duplicate_negatives (`str`, defaults to `"keep"`):
            `"keep"` (the paper): every other row of the batch is a negative. `"mask"`: rows whose
            transcripts are token-identical are not each other's negatives in the text in-modal term
            and the cross-modal terms (InfoNCE(a1, a2) keeps them all).
        gather_across_processes (`bool`, defaults to `True`):
            In distributed training, take contrastive negatives from every process (gathered with
            gradient; each process scores its own rows against all columns).
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the initialisation of the projections and the classifier.
    """

    model_type = "turbo"
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
    }
    # Only the logits are gathered during evaluation; loss parts and embeddings stay out.
    keys_to_ignore_at_inference: ClassVar[list[str]] = [
        "ce_loss",
        "contrastive_loss",
        "in_modal_loss",
        "cross_modal_loss",
        "audio_embeds",
        "text_embeds",
    ]

    audio_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    projection_dim: int = 256
    dropout: float = 0.2
    encoder_dropout: float | None = None
    audio_encoder_dropout: float | None = None
    text_encoder_dropout: float | None = None
    encoder_layerdrop: float = 0.0
    loss_mode: str = "turbo"
    ce_weight: float = 0.5
    temperature: float = 0.05
    text_pooling: str | None = None
    classify_on: str = "first"
    class_weights: list[float] | str | None = None
    audio_window: str = "full"
    feature_norm: str | None = None
    duplicate_negatives: str = "keep"
    gather_across_processes: bool = True
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.apply_to_encoders()

    def apply_to_encoders(self) -> None:
        """Check the Turbo fields and write dropout and LayerDrop into the encoder sub-configs.

        Runs at construction, and again when the model is built: `from_pretrained(path, dropout=0.1)`
        sets its keyword arguments on the config after construction, and they must reach the encoders
        (and be checked) all the same. Idempotent.
        """
        self.validate_turbo_fields()
        if self.text_pooling is None:
            self.text_pooling = "last" if self.text_config.model_type in _CAUSAL_TEXT_MODEL_TYPES else "cls"
        for sub_config, dropout in (
            (self.audio_config, self.resolved_audio_encoder_dropout),
            (self.text_config, self.resolved_text_encoder_dropout),
        ):
            if dropout is not None:
                _set_existing(sub_config, _ENCODER_DROPOUT_ATTRIBUTES, dropout)
        if self.encoder_layerdrop >= 0:
            _set_existing(self.audio_config, _ENCODER_LAYERDROP_ATTRIBUTES, self.encoder_layerdrop)

    @property
    def resolved_audio_encoder_dropout(self) -> float | None:
        """The dropout pushed into the audio encoder; None: its own settings are kept."""
        default = None if self.audio_config.model_type in _PRETRAINED_WITHOUT_DROPOUT else self.dropout
        return _resolve_encoder_dropout(self.audio_encoder_dropout, self.encoder_dropout, default)

    @property
    def resolved_text_encoder_dropout(self) -> float | None:
        """The dropout pushed into the text encoder; None: its own settings are kept."""
        return _resolve_encoder_dropout(self.text_encoder_dropout, self.encoder_dropout, self.dropout)

    def validate_turbo_fields(self) -> None:
        """Raise on an out-of-range Turbo field (also run by `save_pretrained`, as a strict validator)."""
        if self.loss_mode not in LOSS_MODES:
            raise ValueError(f"TurboConfig.loss_mode must be one of {LOSS_MODES}, got {self.loss_mode!r}")
        if self.text_pooling is not None and self.text_pooling not in TEXT_POOLINGS:
            raise ValueError(
                f"TurboConfig.text_pooling must be one of {TEXT_POOLINGS}, got {self.text_pooling!r}"
            )
        if self.classify_on not in CLASSIFY_ON:
            raise ValueError(
                f"TurboConfig.classify_on must be one of {CLASSIFY_ON}, got {self.classify_on!r}"
            )
        if not 0.0 <= self.ce_weight <= 1.0:
            raise ValueError(f"TurboConfig.ce_weight (lambda) must be in [0, 1], got {self.ce_weight}")
        if self.temperature <= 0:
            raise ValueError(f"TurboConfig.temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TurboConfig.dropout must be in [0, 1), got {self.dropout}")
        # Negative values mean "keep the encoder checkpoint's own setting".
        for name in ("encoder_dropout", "audio_encoder_dropout", "text_encoder_dropout"):
            value = getattr(self, name)
            if value is not None and not value < 1.0:
                raise ValueError(f"TurboConfig.{name} must be below 1, got {value}")
        if self.audio_window not in AUDIO_WINDOWS:
            raise ValueError(
                f"TurboConfig.audio_window must be one of {AUDIO_WINDOWS}, got {self.audio_window!r}"
            )
        if self.duplicate_negatives not in DUPLICATE_NEGATIVES:
            raise ValueError(
                f"TurboConfig.duplicate_negatives must be one of {DUPLICATE_NEGATIVES}, "
                f"got {self.duplicate_negatives!r}"
            )
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(
                f"TurboConfig.feature_norm must be one of {FEATURE_NORMS}, got {self.feature_norm!r}"
            )
        if not self.encoder_layerdrop < 1.0:
            raise ValueError(f"TurboConfig.encoder_layerdrop must be below 1, got {self.encoder_layerdrop}")
        if self.projection_dim <= 0:
            raise ValueError(f"TurboConfig.projection_dim must be positive, got {self.projection_dim}")
        self._validate_class_weights()

    def _validate_class_weights(self) -> None:
        """None, "balanced", or one finite positive weight per class (stored as a list of floats)."""
        weights = self.class_weights
        if weights is None or weights == "balanced":
            return
        expected = f"None, 'balanced' or a list of {self.num_labels} positive numbers (one per class)"
        if not isinstance(weights, (list, tuple)):
            raise ValueError(f"TurboConfig.class_weights must be {expected}; got {weights!r}")
        if len(weights) != self.num_labels:
            raise ValueError(
                f"TurboConfig.class_weights has {len(weights)} values for num_labels={self.num_labels}; "
                "give one weight per class, in label id order"
            )
        bad = [
            w
            for w in weights
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (math.isfinite(w) and w > 0)
        ]
        if bad:
            raise ValueError(f"TurboConfig.class_weights must be finite positive numbers; got {bad}")
        self.class_weights = [float(weight) for weight in weights]

    @classmethod
    def from_audio_text_configs(
        cls, audio_config: PreTrainedConfig, text_config: PreTrainedConfig, **kwargs
    ) -> TurboConfig:
        """Build a TurboConfig from two encoder configs (copied, so the originals stay unchanged)."""
        return cls(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(), **kwargs)


def _resolve_encoder_dropout(own: float | None, shared: float | None, default: float | None) -> float | None:
    value = own if own is not None else shared if shared is not None else default
    return None if value is None or value < 0 else value


def _set_existing(config: PreTrainedConfig, names: tuple[str, ...], value: float) -> None:
    for name in names:
        if hasattr(config, name):
            setattr(config, name, value)


__all__ = [
    "TurboConfig",
    "LOSS_MODES",
    "TWO_VIEW_LOSS_MODES",
    "TEXT_POOLINGS",
    "CLASSIFY_ON",
    "AUDIO_WINDOWS",
    "FEATURE_NORMS",
    "DUPLICATE_NEGATIVES",
    "AUDIO_WINDOW_STEP_FRAMES",
]
