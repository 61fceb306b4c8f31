"""TurboConfig: an audio encoder config, a text encoder config and the Turbo hyper-parameters."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import logging

from .configuration_rules import (
    AUDIO_WINDOWS,
    CLASSIFY_ON,
    DUPLICATE_NEGATIVES,
    FEATURE_NORMS,
    LOSS_MODES,
    NEAR_MISS_CUTOFF,
    PRETRAINED_CONFIG_KEYS,
    SUGGESTED_FIELDS,
    TEXT_POOLINGS,
    TURBO_FIELD_RULES,
    check_turbo_field,
    closest_turbo_field,
    describe_unknown,
    unknown_keywords_message,
)
from .model_folders import TURBO_MODEL_TYPE, check_config_dict, check_config_file, local_folder

logger = logging.get_logger(__name__)

# Modes that encode every training batch twice, with independent dropout masks.
TWO_VIEW_LOSS_MODES = frozenset({"turbo", "in_modal"})
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

    Every field is checked (type, finiteness, range or choices: `TURBO_FIELD_RULES`) at construction,
    when the model is built and by `save_pretrained`, with errors naming the field, the value and what
    was expected. A keyword that is no field raises TypeError naming the closest field; a saved config
    holding keys this version does not know loads with a warning naming them.

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

    model_type = TURBO_MODEL_TYPE
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
        # Called with every keyword that is no dataclass field: a misspelt one would otherwise become
        # an attribute nothing reads, and training would run with the default.
        unknown = [key for key in kwargs if not _is_config_key(key)]
        if unknown:
            raise TypeError(unknown_keywords_message(unknown))
        for name in ("id2label", "label2id"):  # PreTrainedConfig would fail on .items()
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"TurboConfig.{name} must be a dict, got {type(value).__name__} {value!r}")
        if "num_labels" in kwargs:  # PreTrainedConfig turns it into id2label with range()
            kwargs["num_labels"] = TURBO_FIELD_RULES["num_labels"].check(
                kwargs["num_labels"], "TurboConfig.num_labels"
            )
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
        """Raise on a field outside its rule (`TURBO_FIELD_RULES`) or on label maps that disagree; store
        numbers as floats. Also run by `save_pretrained`, as a strict validator."""
        for name, rule in TURBO_FIELD_RULES.items():
            value = rule.check(getattr(self, name), f"TurboConfig.{name}")
            if name != "num_labels" and value is not getattr(self, name):
                setattr(self, name, value)
        self._validate_label_maps()
        weights = self.class_weights
        if isinstance(weights, list) and len(weights) != self.num_labels:
            raise ValueError(
                f"TurboConfig.class_weights has {len(weights)} values for num_labels={self.num_labels}; "
                f"give one weight per class, in label id order, got {weights!r}"
            )

    def _validate_label_maps(self) -> None:
        """Class ids 0..n-1 with distinct names (what the classifier's rows and the pipeline's labels are),
        and a label2id, where there is one, that is their inverse."""
        id2label, label2id = self.id2label, self.label2id
        ids = sorted(id2label)
        if ids != list(range(len(ids))):
            raise ValueError(
                f"TurboConfig.id2label must give the classes ids 0..{len(ids) - 1}, got ids {ids}"
            )
        if len(set(id2label.values())) != len(id2label):
            raise ValueError(
                f"TurboConfig.id2label must name the classes with distinct labels, got {id2label}"
            )
        if label2id is not None and {str(k): int(v) for k, v in label2id.items()} != {
            str(label): index for index, label in id2label.items()
        }:
            raise ValueError(
                f"TurboConfig.label2id must map each label of id2label to its id, got {label2id} "
                f"for id2label {id2label}"
            )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> TurboConfig:
        """As `PreTrainedConfig.from_pretrained`; a local folder must exist and hold config.json (without
        it, transformers would return the default config: a wav2vec2-base / bert-base model)."""
        folder = local_folder(pretrained_model_name_or_path, kwargs.get("subfolder", ""))
        if folder is not None and "_configuration_file" not in kwargs and not kwargs.get("gguf_file"):
            check_config_file(folder, cls.model_type)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> TurboConfig | tuple[TurboConfig, dict]:
        """A TurboConfig from a saved dict (`from_pretrained`, `AutoConfig` and the model's loading call this).

        Keys of the saved dict that are no TurboConfig field nor a key transformers' config machinery
        knows (a config.json written by another version, or edited by hand) do not stop the load: a
        warning names each, with the closest field, and they are kept on the config as transformers
        keeps such keys. Keyword overrides are checked like direct arguments: one that names no field
        raises (with `return_unused_kwargs`, where the rest goes on to the model, one that is a near
        miss of a Turbo field raises). Overrides are then checked with the other fields.
        """
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        known = {key: value for key, value in config_dict.items() if _is_config_key(key)}
        extra = {key: value for key, value in config_dict.items() if key not in known}
        if extra:
            logger.warning(
                f"a saved TurboConfig holds key(s) this version does not know: "
                f"{describe_unknown(extra, SUGGESTED_FIELDS)}; they are kept on the config but nothing reads them"
            )
        config, unused = super().from_dict(known, return_unused_kwargs=True, **kwargs)
        for key, value in extra.items():
            setattr(config, key, value)
        cutoff = NEAR_MISS_CUTOFF if return_unused_kwargs else 0.0
        misspelt = [key for key in unused if closest_turbo_field(key, cutoff) is not None]
        if misspelt:
            raise TypeError(unknown_keywords_message(misspelt))
        config.apply_to_encoders()
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def _dict_from_json_file(cls, json_file) -> dict[str, Any]:
        # Where from_pretrained (local folder or hub cache) first sees the file: a JSON list, another
        # family's config.json or a list for id2label are named here, with the file.
        config_dict = super()._dict_from_json_file(json_file)
        check_config_dict(config_dict, json_file, cls.model_type)
        return config_dict

    @classmethod
    def from_json_file(cls, json_file) -> TurboConfig:
        """A TurboConfig from a config.json file, read as `from_dict` reads a saved dict."""
        return cls.from_dict(cls._dict_from_json_file(json_file))

    @classmethod
    def from_audio_text_configs(
        cls, audio_config: PreTrainedConfig, text_config: PreTrainedConfig, **kwargs
    ) -> TurboConfig:
        """Build a TurboConfig from two encoder configs (copied, so the originals stay unchanged)."""
        return cls(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(), **kwargs)


_TURBO_FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(TurboConfig))


def _is_config_key(key: str) -> bool:
    if key in _TURBO_FIELD_NAMES or key in PRETRAINED_CONFIG_KEYS:
        return True
    attribute = getattr(PreTrainedConfig, key, None)  # num_labels, torch_dtype ...: settable properties
    return isinstance(attribute, property) and attribute.fset is not None


def _resolve_encoder_dropout(own: float | None, shared: float | None, default: float | None) -> float | None:
    value = own if own is not None else shared if shared is not None else default
    return None if value is None or value < 0 else value


def _set_existing(config: PreTrainedConfig, names: tuple[str, ...], value: float) -> None:
    for name in names:
        if hasattr(config, name):
            setattr(config, name, value)


__all__ = [
    "TurboConfig",
    "TURBO_FIELD_RULES",
    "check_turbo_field",
    "LOSS_MODES",
    "TWO_VIEW_LOSS_MODES",
    "TEXT_POOLINGS",
    "CLASSIFY_ON",
    "AUDIO_WINDOWS",
    "FEATURE_NORMS",
    "DUPLICATE_NEGATIVES",
    "AUDIO_WINDOW_STEP_FRAMES",
]
