"""TurboForAudioTextClassification: an audio encoder and a text encoder, linear projections to a
joint space, a linear classifier on the concatenated projections, trained with CE + Turbo."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ModelOutput
from transformers.utils import logging

from .audio_encoders import audio_encoder_adapter, build_audio_encoder, load_audio_encoder
from .configuration_rules import NEAR_MISS_CUTOFF, closest_turbo_field
from .configuration_turbo import TWO_VIEW_LOSS_MODES, TurboConfig
from .losses import in_modal_loss, info_nce, transcript_rows, turbo_loss_terms
from .model_folders import check_loading_info, check_model_folder, local_folder, weights_description
from .pooling import masked_mean
from .text_encoders import TextEncoderAdapter, build_text_encoder, load_text_encoder

logger = logging.get_logger(__name__)


@dataclass
class TurboClassifierOutput(ModelOutput):
    """
    Output of [`TurboForAudioTextClassification`].

    Args:
        loss: Training objective: lambda * CE + (1 - lambda) * contrastive (CE alone in eval mode).
        logits: Classification scores of view 1, before softmax, shape (batch, num_labels).
        ce_loss: Cross-entropy of the classifier.
        contrastive_loss: The contrastive part, in-modal + cross-modal (training only).
        in_modal_loss: InfoNCE(a1, a2) + InfoNCE(t1, t2) ("turbo" and "in_modal" training only).
        cross_modal_loss: The cross-modal InfoNCE terms (four in Turbo, one in "cross").
        audio_embeds: Projected audio embeddings h_a of view 1, shape (batch, projection_dim).
        text_embeds: Projected text embeddings h_t of view 1, shape (batch, projection_dim).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    ce_loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    in_modal_loss: torch.FloatTensor | None = None
    cross_modal_loss: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None


class TurboPreTrainedModel(PreTrainedModel):
    config_class = TurboConfig
    config: TurboConfig
    base_model_prefix = "turbo"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = []
    _supports_sdpa = True
    # The loss is a per-batch mean (InfoNCE needs the whole batch), not a sum over items: the Trainer
    # must scale it for gradient accumulation and must not pass num_items_in_batch.
    accepts_loss_kwargs = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, after checking a local folder: that it exists, holds a
        Turbo config.json and complete safetensors weights (errors naming the folder or the file).

        A saved Turbo model is loaded whole: weights that lack tensors of the model, hold others, or
        hold them in another shape (num_labels, projection_dim, an encoder's size) are an error naming
        the file, the tensors and the config field, where transformers would log a report and go on
        with random tensors. `ignore_mismatched_sizes=True` still replaces tensors of another shape
        with new ones (a new head). Pretrained encoders go through `from_encoders_pretrained`.
        """
        subfolder = kwargs.get("subfolder", "")
        given_config = kwargs.get("config") is not None
        if pretrained_model_name_or_path is not None:
            check_model_folder(
                pretrained_model_name_or_path,
                subfolder,
                needs_config=not given_config and not kwargs.get("gguf_file"),
            )
        wants_info = kwargs.pop("output_loading_info", False)
        allow_mismatched = kwargs.get("ignore_mismatched_sizes", False)
        # transformers raises on a shape mismatch before it returns what it found: let it return, and
        # hold its load report back, so that the error below is the one message.
        kwargs["ignore_mismatched_sizes"] = True
        with _held_load_report() as held:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        if pretrained_model_name_or_path is None:
            weights, config_file = "the given state_dict", "the given config"
        else:
            weights = weights_description(pretrained_model_name_or_path, subfolder)
            folder = local_folder(pretrained_model_name_or_path, subfolder)
            config_file = (
                str(folder / "config.json") if folder else f"config.json of {pretrained_model_name_or_path}"
            )
            config_file = "the config passed to from_pretrained" if given_config else config_file
        check_loading_info(info, weights, config_file, model.config, allow_mismatched)
        held.release()
        return (model, info) if wants_info else model

    def _init_weights(self, module: nn.Module) -> None:
        # Encoders are PreTrainedModels and initialise themselves; this reaches only the new heads.
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):  # feature_norm="batch": statistics only, no weights
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)


class TurboForAudioTextClassification(TurboPreTrainedModel):
    """Audio + text classifier trained with Turbo (or the vanilla / cross / in-modal baselines).

    In training with two views (`loss_mode="turbo"` or `"in_modal"`) the batch is encoded twice with
    independent dropout masks, as ONE forward over 2N rows; what an audio encoder computes before its
    first dropout runs once on the N rows (see `turbo_hf.audio_encoders`).
    """

    def __init__(
        self,
        config: TurboConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        # Keyword overrides of from_pretrained land on the config after its __post_init__.
        config.apply_to_encoders()
        if config.class_weights == "balanced":
            raise ValueError(
                "TurboConfig.class_weights='balanced' must become numbers before the model is built: pass "
                "turbo_hf.losses.balanced_class_weights(train_labels, class_names) (the recipes do)"
            )
        self.audio_model = (
            audio_model if audio_model is not None else build_audio_encoder(config.audio_config)
        )
        self.text_model = text_model if text_model is not None else build_text_encoder(config.text_config)
        # What save_pretrained writes is what runs: the towers read the wrapper's sub-configs, which
        # keep the attention implementation each tower was actually built with.
        self.config.audio_config._attn_implementation = self.audio_model.config._attn_implementation
        self.config.text_config._attn_implementation = self.text_model.config._attn_implementation
        self.audio_model.config = self.config.audio_config
        self.text_model.config = self.config.text_config

        audio_size, text_size = config.audio_config.hidden_size, config.text_config.hidden_size
        self.audio_feature_norm = _feature_norm(config.feature_norm, audio_size)
        self.text_feature_norm = _feature_norm(config.feature_norm, text_size)
        self.audio_projection = nn.Linear(audio_size, config.projection_dim)
        self.text_projection = nn.Linear(text_size, config.projection_dim)
        self.projection_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.projection_dim, config.num_labels)

        self.audio_adapter = audio_encoder_adapter(self.audio_model, config.audio_window)
        self.text_adapter = TextEncoderAdapter(self.text_model, config.text_pooling)
        self.post_init()

    # -- construction from pretrained encoders ------------------------------------------------------
    @classmethod
    def from_encoders_pretrained(
        cls,
        audio_model_name_or_path: str,
        text_model_name_or_path: str,
        **kwargs,
    ) -> TurboForAudioTextClassification:
        """Load pretrained audio and text encoders and add fresh projections and classifier.

        Keyword arguments starting with `audio_` / `text_` go to the respective encoder's
        `from_pretrained` (e.g. `audio_revision=...`); the rest are TurboConfig fields
        (`num_labels`, `loss_mode`, `ce_weight`, ...). Dropout settings of the TurboConfig are
        applied to the encoders before their weights are loaded.
        """
        config_fields = {f.name for f in dataclasses.fields(TurboConfig)}
        for name in kwargs:
            # audio_windw= would go to the encoder's from_pretrained as windw= and fail there unexplained.
            match = None if name in config_fields else closest_turbo_field(name, NEAR_MISS_CUTOFF)
            if match is not None and name.startswith(("audio_", "text_")):
                raise TypeError(
                    f"from_encoders_pretrained got {name!r}: did you mean the TurboConfig field {match!r}? "
                    "(other audio_* / text_* keywords go to that encoder's from_pretrained)"
                )

        def encoder_kwargs(prefix: str) -> dict:
            # `text_pooling` is a TurboConfig field, not a text-encoder argument.
            names = [k for k in kwargs if k.startswith(prefix) and k not in config_fields]
            return {k[len(prefix) :]: kwargs.pop(k) for k in names}

        audio_kwargs, text_kwargs = encoder_kwargs("audio_"), encoder_kwargs("text_")
        local_folder(audio_model_name_or_path, audio_kwargs.get("subfolder", ""), what="audio encoder")
        local_folder(text_model_name_or_path, text_kwargs.get("subfolder", ""), what="text encoder")
        unprefixed = sorted(set(kwargs) & set(_HUB_KWARGS))
        if unprefixed:
            raise TypeError(
                f"from_encoders_pretrained got {unprefixed}: arguments for loading an encoder take its prefix "
                f"({', '.join(f'audio_{name}= / text_{name}=' for name in unprefixed)})"
            )
        config = TurboConfig(
            audio_config=AutoConfig.from_pretrained(audio_model_name_or_path, **_hub_kwargs(audio_kwargs)),
            text_config=AutoConfig.from_pretrained(text_model_name_or_path, **_hub_kwargs(text_kwargs)),
            **kwargs,
        )
        audio_model = load_audio_encoder(audio_model_name_or_path, config.audio_config, audio_kwargs)
        text_model = load_text_encoder(text_model_name_or_path, config.text_config, text_kwargs)
        model = cls(config, audio_model=audio_model, text_model=text_model)
        logger.warning(
            "The projections and the classifier of TurboForAudioTextClassification are newly initialised: "
            "train the model before using it for predictions."
        )
        return model

    # -- encoder utilities ------------------------------------------------------------------------
    def freeze_feature_encoder(self) -> None:
        """Stop gradients to the audio encoder's convolutional front end (wav2vec2 family)."""
        if not hasattr(self.audio_model, "freeze_feature_encoder"):
            raise ValueError(
                f"the {self.config.audio_config.model_type} audio encoder has no separate feature encoder to freeze"
            )
        self.audio_model.freeze_feature_encoder()

    @property
    def min_audio_samples(self) -> int | None:
        """Fewest input samples (at the processor's sampling rate) that a clip alone needs in the
        model's current mode; None for encoders fed fixed-size features (Whisper).

        One frame out of the conv front end (its receptive field), enough frames for the adapter's
        convolutions if there is one, and in training with SpecAugment one masked span
        (`mask_time_length` frames). In a batch the last two apply to the padded length only.
        """
        return self.audio_adapter.min_samples(self.training)

    @property
    def receptive_field_samples(self) -> int | None:
        """Input samples that make one frame of the conv front end: every utterance needs this many,
        also beside longer ones in a batch (None for Whisper)."""
        return self.audio_adapter.receptive_field_samples

    def get_audio_features(
        self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None = None, num_views: int = 1
    ) -> torch.Tensor:
        """Projected audio embeddings h_a (after dropout in training), shape (num_views * N, d)."""
        hidden_states = self.audio_adapter.encode(audio_inputs, audio_attention_mask, num_views)
        frame_mask = self.audio_adapter.frame_mask(audio_attention_mask, hidden_states.shape[1])
        pooled = masked_mean(hidden_states, None if frame_mask is None else frame_mask.repeat(num_views, 1))
        return self.projection_dropout(self.audio_projection(self.audio_feature_norm(pooled)))

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        num_views: int = 1,
    ) -> torch.Tensor:
        """Projected text embeddings h_t (after dropout in training), shape (num_views * N, d)."""
        pooled = self.text_adapter.encode(input_ids, attention_mask, token_type_ids, num_views)
        return self.projection_dropout(self.text_projection(self.text_feature_norm(pooled)))

    # -- forward ------------------------------------------------------------------------------------
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        **kwargs,
    ) -> TurboClassifierOutput:
        r"""
        input_values / input_features: audio as the feature extractor returns it (raw samples for the
            wav2vec2 family, log-mel features for Whisper).
        audio_attention_mask: 1 for real audio samples (or mel frames), 0 for padding.
        input_ids, attention_mask, token_type_ids: the tokenized transcript.
        labels: class indices, shape (batch,).
        """
        audio_inputs = input_values if input_values is not None else input_features
        if audio_inputs is None or input_ids is None:
            raise ValueError(
                "TurboForAudioTextClassification needs audio (input_values or input_features) and input_ids"
            )
        batch_size = input_ids.shape[0]
        # Each audio row is paired with the transcript of the same row: other sizes would be split into
        # misaligned "views" (training) or cut to the shorter batch (inference) without a word.
        sizes = {"audio": audio_inputs.shape[0], "input_ids": batch_size}
        if labels is not None:
            sizes["labels"] = labels.shape[0]
        if len(set(sizes.values())) > 1:
            raise ValueError(
                "TurboForAudioTextClassification: every input has one row per example; got "
                + ", ".join(f"{count} {name} rows" for name, count in sizes.items())
            )
        config = self.config
        num_views = 2 if self.training and config.loss_mode in TWO_VIEW_LOSS_MODES else 1
        audio = self.get_audio_features(audio_inputs, audio_attention_mask, num_views).split(batch_size)
        text = self.get_text_features(input_ids, attention_mask, token_type_ids, num_views).split(batch_size)
        logits = [self.classifier(torch.cat(pair, dim=-1)) for pair in zip(audio, text)]

        ce_loss = None
        if labels is not None:
            classified = logits if config.classify_on == "both" else logits[:1]
            weight = (
                None if config.class_weights is None else logits[0].new_tensor(config.class_weights).float()
            )
            ce_loss = torch.stack(
                [F.cross_entropy(view.float(), labels, weight=weight) for view in classified]
            ).mean()
        contrastive = _ContrastiveParts()  # evaluation: CE only
        if self.training:
            contrastive = self._contrastive_parts(audio, text, input_ids, attention_mask)
        return TurboClassifierOutput(
            loss=_weighted_loss(ce_loss, contrastive.total, config.ce_weight),
            logits=logits[0],
            ce_loss=ce_loss,
            contrastive_loss=contrastive.total,
            in_modal_loss=contrastive.in_modal,
            cross_modal_loss=contrastive.cross_modal,
            audio_embeds=audio[0],
            text_embeds=text[0],
        )

    def _contrastive_parts(
        self,
        audio: tuple[torch.Tensor, ...],
        text: tuple[torch.Tensor, ...],
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
    ) -> _ContrastiveParts:
        """The InfoNCE terms of `loss_mode` for the views (a1, a2), (t1, t2) of one training batch."""
        # duplicate_negatives="mask": the losses leave token-identical transcripts out of the negatives.
        masked = self.config.duplicate_negatives == "mask"
        transcripts = transcript_rows(input_ids, attention_mask) if masked else None
        mode, tau, gather = (
            self.config.loss_mode,
            self.config.temperature,
            self.config.gather_across_processes,
        )
        if mode == "turbo":
            terms = turbo_loss_terms(audio[0], text[0], audio[1], text[1], tau, gather, transcripts)
            return _ContrastiveParts(in_modal=terms.in_modal, cross_modal=terms.cross_modal)
        if mode == "in_modal":
            return _ContrastiveParts(
                in_modal=in_modal_loss(audio[0], text[0], audio[1], text[1], tau, gather, transcripts)
            )
        if mode == "cross":
            return _ContrastiveParts(cross_modal=info_nce(audio[0], text[0], tau, gather, transcripts))
        return _ContrastiveParts()


class _ContrastiveParts(NamedTuple):
    in_modal: torch.Tensor | None = None
    cross_modal: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor | None:
        if self.in_modal is None or self.cross_modal is None:
            return self.cross_modal if self.in_modal is None else self.in_modal
        return self.in_modal + self.cross_modal


def _weighted_loss(ce_loss: torch.Tensor | None, contrastive: torch.Tensor | None, ce_weight: float):
    """lambda * CE + (1 - lambda) * contrastive, with whichever part is there."""
    if contrastive is None:
        return ce_loss
    if ce_loss is None:
        return (1.0 - ce_weight) * contrastive
    return ce_weight * ce_loss + (1.0 - ce_weight) * contrastive


def _feature_norm(kind: str | None, size: int) -> nn.Module:
    # No affine parameters: the projection that follows is affine already.
    return nn.BatchNorm1d(size, affine=False) if kind == "batch" else nn.Identity()


class _held_load_report(contextlib.AbstractContextManager):
    """Holds back the LOAD REPORT that transformers logs while loading weights; `release()` logs it
    after all (the load is accepted), and leaving without it drops it (an error says more)."""

    _logger = logging.get_logger("transformers.modeling_utils")

    def __init__(self):
        self.records: list = []

    def filter(self, record) -> bool:
        if "LOAD REPORT" in str(record.msg):
            self.records.append(record)
            return False
        return True

    def __enter__(self):
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc_info):
        self._logger.removeFilter(self)

    def release(self) -> None:
        for record in self.records:
            self._logger.handle(record)
        self.records.clear()


_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code", "subfolder")


def _hub_kwargs(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k in _HUB_KWARGS}


__all__ = ["TurboForAudioTextClassification", "TurboPreTrainedModel", "TurboClassifierOutput"]
