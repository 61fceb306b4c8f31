"""TurboForAudioTextClassification: an audio encoder and a text encoder, linear projections to a
joint space, a linear classifier on the concatenated projections, trained with CE + Turbo."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import ModelOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder
from transformers.utils import logging

from .configuration_turbo import TurboConfig
from .losses import info_nce, turbo_loss_terms

logger = logging.get_logger(__name__)

# Audio encoders that are the encoder half of a sequence-to-sequence model: only that half is built.
_ENCODER_ONLY_AUDIO_CLASSES = {"whisper": WhisperEncoder}


@dataclass
class TurboClassifierOutput(ModelOutput):
    """
    Output of [`TurboForAudioTextClassification`].

    Args:
        loss: Training objective: lambda * CE + (1 - lambda) * contrastive (CE alone in eval mode).
        logits: Classification scores of view 1, before softmax, shape (batch, num_labels).
        ce_loss: Cross-entropy of the classifier.
        contrastive_loss: The contrastive part, in-modal + cross-modal (training only).
        in_modal_loss: InfoNCE(a1, a2) + InfoNCE(t1, t2) (Turbo training only).
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


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the time axis of (batch, time, hidden), counting only positions where mask is true."""
    if mask is None:
        return hidden_states.mean(dim=1)
    mask = mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def last_token(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Hidden state of the last real token of each row; works with left or right padding."""
    if attention_mask is None:
        return hidden_states[:, -1]
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask.long() * positions).argmax(dim=1)
    return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), last]


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _build_audio_encoder(config) -> PreTrainedModel:
    encoder_class = _ENCODER_ONLY_AUDIO_CLASSES.get(config.model_type)
    return encoder_class(config) if encoder_class is not None else AutoModel.from_config(config)


def _text_model_init_kwargs(config) -> dict:
    # BERT-like models carry a pooler (dense + tanh) that Turbo never uses; left in, its parameters
    # get no gradient and DistributedDataParallel without find_unused_parameters fails.
    model_class = AutoModel._model_mapping[type(config)]
    return {"add_pooling_layer": False} if _accepts(model_class.__init__, "add_pooling_layer") else {}


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

    def _init_weights(self, module: nn.Module) -> None:
        # Encoders are PreTrainedModels and initialise themselves; this reaches only the new heads.
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class TurboForAudioTextClassification(TurboPreTrainedModel):
    """Audio + text classifier trained with Turbo (or the vanilla / cross baselines).

    In training with `loss_mode="turbo"` the batch is encoded twice with independent dropout masks,
    as ONE forward over 2N rows. For wav2vec2-family encoders the convolutional front end, which has
    no dropout, runs once on the N rows and only feature projection + transformer run on 2N rows.
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
        if audio_model is None:
            audio_model = _build_audio_encoder(config.audio_config)
        if text_model is None:
            text_model = AutoModel.from_config(
                config.text_config, **_text_model_init_kwargs(config.text_config)
            )
        self.audio_model = audio_model
        self.text_model = text_model
        # What save_pretrained writes is what runs: the towers read the wrapper's sub-configs, which
        # keep the attention implementation each tower was actually built with.
        self.config.audio_config._attn_implementation = self.audio_model.config._attn_implementation
        self.config.text_config._attn_implementation = self.text_model.config._attn_implementation
        self.audio_model.config = self.config.audio_config
        self.text_model.config = self.config.text_config

        self.audio_projection = nn.Linear(config.audio_config.hidden_size, config.projection_dim)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim)
        self.projection_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.projection_dim, config.num_labels)

        self._has_split_front_end = all(
            hasattr(self.audio_model, name) for name in ("feature_extractor", "feature_projection", "encoder")
        )
        # Group-norm front ends (wav2vec2-base, hubert-base, wavlm-base) were pretrained on unpadded
        # audio and are fed zero-padded input without a mask, as transformers advises; layer-norm
        # ones (wav2vec2-large-lv60, data2vec-audio, which has no `feat_extract_norm`) take the mask.
        self._encoder_takes_audio_mask = (
            getattr(config.audio_config, "feat_extract_norm", "layer") != "group"
            and config.audio_config.model_type not in _ENCODER_ONLY_AUDIO_CLASSES
        )
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

        def encoder_kwargs(prefix: str) -> dict:
            # `text_pooling` is a TurboConfig field, not a text-encoder argument.
            names = [k for k in kwargs if k.startswith(prefix) and k not in config_fields]
            return {k[len(prefix) :]: kwargs.pop(k) for k in names}

        audio_kwargs, text_kwargs = encoder_kwargs("audio_"), encoder_kwargs("text_")
        config = TurboConfig(
            audio_config=AutoConfig.from_pretrained(audio_model_name_or_path, **_hub_kwargs(audio_kwargs)),
            text_config=AutoConfig.from_pretrained(text_model_name_or_path, **_hub_kwargs(text_kwargs)),
            **kwargs,
        )
        audio_model = _load_audio_encoder(audio_model_name_or_path, config.audio_config, audio_kwargs)
        text_model = AutoModel.from_pretrained(
            text_model_name_or_path,
            config=config.text_config,
            **_text_model_init_kwargs(config.text_config),
            **text_kwargs,
        )
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

    def _audio_frame_mask(
        self, audio_attention_mask: torch.Tensor | None, num_frames: int
    ) -> torch.Tensor | None:
        """Valid output frames, from the input lengths, even when the encoder takes no mask."""
        if audio_attention_mask is None:
            return None
        lengths = self.audio_model._get_feat_extract_output_lengths(audio_attention_mask.sum(-1))
        return torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]

    @property
    def min_audio_samples(self) -> int | None:
        """Fewest input samples (at the processor's sampling rate) that a clip alone needs in the
        model's current mode; None for encoders fed fixed-size features (Whisper).

        One frame out of the conv front end (its receptive field), enough frames for the adapter's
        convolutions if there is one, and in training with SpecAugment one masked span
        (`mask_time_length` frames). In a batch the last two apply to the padded length only.
        """
        return self._samples_for_frames(self._min_batch_frames())

    @property
    def receptive_field_samples(self) -> int | None:
        """Input samples that make one frame of the conv front end: every utterance needs this many,
        also beside longer ones in a batch (None for Whisper)."""
        return self._samples_for_frames(1)

    def _samples_for_frames(self, frames: int) -> int | None:
        config = self.config.audio_config
        if not hasattr(config, "conv_kernel"):
            return None
        needed = frames
        for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
            needed = (needed - 1) * stride + kernel
        return needed

    def _min_batch_frames(self) -> int:
        config = self.config.audio_config
        frames = 1
        if getattr(config, "add_adapter", False):
            # Adapter convolutions (padding 1) run after the transformer and must keep one frame.
            for _ in range(config.num_adapter_layers):
                frames = max(1, (frames - 1) * config.adapter_stride + config.adapter_kernel_size - 2)
        if self.training and getattr(config, "apply_spec_augment", False) and config.mask_time_prob > 0:
            frames = max(frames, config.mask_time_length)
        return frames

    def _check_audio_long_enough(
        self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None
    ) -> None:
        # Too little audio gives torch's "Kernel size can't be greater than actual input size" or
        # transformers' "`mask_length` has to be smaller than `sequence_length`", and a row under one
        # frame beside longer ones a pooled embedding over zero frames: say what is wrong instead.
        per_row = self.receptive_field_samples
        if per_row is None:
            return  # Whisper: log-mel features padded to a fixed window
        width, whole_batch = audio_inputs.shape[-1], self.min_audio_samples
        if width < whole_batch:
            raise ValueError(
                f"audio too short for the {self.config.audio_config.model_type} encoder: the longest utterance "
                f"of the batch has {width} samples, and it needs at least {whole_batch}"
                f"{' in training' if self.training else ''} (see min_audio_samples)"
            )
        # Per-row lengths live in the mask; reading them on an accelerator would cost a host sync
        # every step, so there the training collator checks rows instead (`min_samples`).
        if audio_attention_mask is None or audio_attention_mask.device.type != "cpu":
            return
        lengths = audio_attention_mask.sum(-1)
        if lengths.min().item() >= per_row:
            return
        short = {row: int(length) for row, length in enumerate(lengths.tolist()) if length < per_row}
        raise ValueError(
            f"audio too short for the {self.config.audio_config.model_type} encoder: batch row(s) {short} "
            f"(row: samples) have fewer than the {per_row} samples of its receptive field, which make one frame"
        )

    def _encode_audio(
        self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None, num_views: int
    ) -> torch.Tensor:
        """Frame-level hidden states of `num_views` stacked copies of the batch."""
        self._check_audio_long_enough(audio_inputs, audio_attention_mask)
        encoder_mask = audio_attention_mask if self._encoder_takes_audio_mask else None
        if num_views > 1 and self._has_split_front_end:
            return self._encode_audio_shared_front_end(audio_inputs, encoder_mask, num_views)
        audio_inputs = audio_inputs.repeat(num_views, *([1] * (audio_inputs.dim() - 1)))
        if encoder_mask is not None:
            encoder_mask = encoder_mask.repeat(num_views, 1)
        return self.audio_model(audio_inputs, attention_mask=encoder_mask).last_hidden_state

    def _encode_audio_shared_front_end(
        self, input_values: torch.Tensor, encoder_mask: torch.Tensor | None, num_views: int
    ) -> torch.Tensor:
        # The convolutional front end has no dropout, so both views would compute identical
        # features: run it once on N rows and repeat. The gradient through `repeat` sums both
        # views' contributions, exactly as two full passes would. Mirrors Wav2Vec2Model.forward.
        model = self.audio_model
        features = model.feature_extractor(input_values).transpose(1, 2)
        features = features.repeat(num_views, 1, 1)
        frame_mask = None
        if encoder_mask is not None:
            length_kwargs = (
                {"add_adapter": False}
                if _accepts(model._get_feature_vector_attention_mask, "add_adapter")
                else {}
            )
            frame_mask = model._get_feature_vector_attention_mask(
                features.shape[1], encoder_mask.repeat(num_views, 1), **length_kwargs
            )
        projected = model.feature_projection(features)
        hidden_states = projected[0] if isinstance(projected, tuple) else projected
        if _accepts(model._mask_hidden_states, "attention_mask"):
            hidden_states = model._mask_hidden_states(hidden_states, attention_mask=frame_mask)
        else:
            hidden_states = model._mask_hidden_states(hidden_states)
        hidden_states = model.encoder(hidden_states, attention_mask=frame_mask).last_hidden_state
        if getattr(model, "adapter", None) is not None:
            hidden_states = model.adapter(hidden_states)
        return hidden_states

    def _pool_text(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.config.text_pooling == "cls":
            return hidden_states[:, 0]
        if self.config.text_pooling == "mean":
            return masked_mean(hidden_states, attention_mask)
        return last_token(hidden_states, attention_mask)

    def _encode_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        num_views: int,
    ) -> torch.Tensor:
        def stack(tensor):
            return None if tensor is None else tensor.repeat(num_views, 1)

        text_inputs = {"input_ids": stack(input_ids), "attention_mask": stack(attention_mask)}
        if token_type_ids is not None:
            text_inputs["token_type_ids"] = stack(token_type_ids)
        hidden_states = self.text_model(**text_inputs).last_hidden_state
        return self._pool_text(hidden_states, text_inputs["attention_mask"])

    def get_audio_features(
        self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None = None, num_views: int = 1
    ) -> torch.Tensor:
        """Projected audio embeddings h_a (after dropout in training), shape (num_views * N, d)."""
        hidden_states = self._encode_audio(audio_inputs, audio_attention_mask, num_views)
        mask = audio_attention_mask.repeat(num_views, 1) if audio_attention_mask is not None else None
        pooled = masked_mean(hidden_states, self._audio_frame_mask(mask, hidden_states.shape[1]))
        return self.projection_dropout(self.audio_projection(pooled))

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        num_views: int = 1,
    ) -> torch.Tensor:
        """Projected text embeddings h_t (after dropout in training), shape (num_views * N, d)."""
        pooled = self._encode_text(input_ids, attention_mask, token_type_ids, num_views)
        return self.projection_dropout(self.text_projection(pooled))

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
        config = self.config
        num_views = 2 if self.training and config.loss_mode == "turbo" else 1
        batch_size = input_ids.shape[0]

        audio_views = self.get_audio_features(audio_inputs, audio_attention_mask, num_views).split(batch_size)
        text_views = self.get_text_features(input_ids, attention_mask, token_type_ids, num_views).split(
            batch_size
        )
        logits_per_view = [
            self.classifier(torch.cat([audio, text], dim=-1)) for audio, text in zip(audio_views, text_views)
        ]
        logits = logits_per_view[0]

        ce_loss = None
        if labels is not None:
            classified = logits_per_view if config.classify_on == "both" else logits_per_view[:1]
            ce_loss = torch.stack([F.cross_entropy(view.float(), labels) for view in classified]).mean()

        in_modal = cross_modal = contrastive = None
        if self.training and config.loss_mode == "turbo":
            terms = turbo_loss_terms(
                audio_views[0], text_views[0], audio_views[1], text_views[1],
                config.temperature, config.gather_across_processes,
            )  # fmt: skip
            in_modal, cross_modal = terms.in_modal, terms.cross_modal
            contrastive = in_modal + cross_modal
        elif self.training and config.loss_mode == "cross":
            cross_modal = info_nce(
                audio_views[0], text_views[0], config.temperature, config.gather_across_processes
            )
            contrastive = cross_modal

        if contrastive is None:
            loss = ce_loss
        elif ce_loss is None:
            loss = (1.0 - config.ce_weight) * contrastive
        else:
            loss = config.ce_weight * ce_loss + (1.0 - config.ce_weight) * contrastive

        return TurboClassifierOutput(
            loss=loss,
            logits=logits,
            ce_loss=ce_loss,
            contrastive_loss=contrastive,
            in_modal_loss=in_modal,
            cross_modal_loss=cross_modal,
            audio_embeds=audio_views[0],
            text_embeds=text_views[0],
        )


_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code", "subfolder")


def _hub_kwargs(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k in _HUB_KWARGS}


def _load_audio_encoder(name_or_path: str, config, kwargs: dict) -> PreTrainedModel:
    if config.model_type in _ENCODER_ONLY_AUDIO_CLASSES:
        # Checkpoints hold the whole seq2seq model; load it and keep its encoder.
        return AutoModel.from_pretrained(name_or_path, config=config, **kwargs).get_encoder()
    return AutoModel.from_pretrained(name_or_path, config=config, **kwargs)


__all__ = ["TurboForAudioTextClassification", "TurboPreTrainedModel", "TurboClassifierOutput"]
