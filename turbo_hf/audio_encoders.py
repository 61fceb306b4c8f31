"""How Turbo drives each audio-encoder family: one adapter per family behind one interface.

Turbo encodes a batch k times with independent dropout masks (k = 2 views in training). Whatever an
encoder computes before its first dropout is the same for every view, so an adapter splits the
encoder in two: `front_end` runs once on the N rows, `rest` (dropout + transformer) on k·N rows.
The gradient through the repeat sums both views' contributions, exactly as k full passes would.
An adapter also knows its family's length arithmetic: the frame mask of the real audio (for
pooling, even where the encoder itself takes no mask) and the fewest samples a clip needs.

Families: the wav2vec2 family (wav2vec2, HuBERT, WavLM, data2vec-audio: conv front end), Whisper
(conv1 / conv2 + positional embeddings; also runs on a window shorter than the pretrained 30 s,
see `TurboConfig.audio_window`), and a plain fallback (the whole encoder on k·N rows) for any other.

The adapters re-implement the head of `Wav2Vec2Model.forward` / `WhisperEncoder.forward` and so
call private transformers members. Those calls live here only, and each adapter checks at
construction that they still exist with the signatures used (`check_transformers_api`), so a
transformers release that changes them fails loudly, naming the member, instead of computing
something else.
"""

from __future__ import annotations

import inspect

import torch
import transformers
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder
from transformers.utils import logging

from .configuration_turbo import AUDIO_WINDOW_STEP_FRAMES

logger = logging.get_logger(__name__)

WAV2VEC2_FAMILY = frozenset({"wav2vec2", "hubert", "wavlm", "data2vec-audio"})
# Audio encoders that are the encoder half of a sequence-to-sequence model: only that half is built.
_ENCODER_ONLY_AUDIO_CLASSES = {"whisper": WhisperEncoder}


class TransformersAPIError(RuntimeError):
    """The installed transformers lacks a private member (or signature) that an encoder adapter uses."""


def require_member(owner: object, name: str, parameters: tuple[str, ...] = (), family: str = "") -> None:
    """Raise TransformersAPIError unless `owner.name` exists and accepts the keyword `parameters`."""
    where = f"{type(owner).__name__}.{name}"
    member = getattr(owner, name, None)
    if member is None:
        missing = f"has no `{where}`"
    elif not parameters:
        return
    else:
        accepted = inspect.signature(member).parameters
        absent = [parameter for parameter in parameters if parameter not in accepted]
        if not absent:
            return
        missing = f"has `{where}` without the parameter(s) {absent} (signature {inspect.signature(member)})"
    raise TransformersAPIError(
        f"transformers {transformers.__version__} {missing}, which turbo_hf's {family} encoder adapter "
        "(turbo_hf/audio_encoders.py or text_encoders.py) calls; this release of turbo_hf was written "
        "against transformers 5.24. Install that version, or update the adapter to the new API."
    )


def build_audio_encoder(config) -> PreTrainedModel:
    """A randomly initialised audio encoder for `config` (for Whisper: its encoder half only)."""
    encoder_class = _ENCODER_ONLY_AUDIO_CLASSES.get(config.model_type)
    return encoder_class(config) if encoder_class is not None else AutoModel.from_config(config)


def load_audio_encoder(name_or_path: str, config, kwargs: dict) -> PreTrainedModel:
    """The pretrained audio encoder at `name_or_path` (a hub id or a folder), configured by `config`."""
    model = AutoModel.from_pretrained(name_or_path, config=config, **kwargs)
    # Seq2seq checkpoints (Whisper) hold the whole model: keep its encoder.
    return model.get_encoder() if config.model_type in _ENCODER_ONLY_AUDIO_CLASSES else model


class AudioEncoderAdapter:
    """Drives one audio encoder for Turbo. Subclasses implement one family; this base class is the
    plain fallback: no front end of its own, the whole encoder on k·N rows."""

    family = "plain"

    def __init__(self, encoder: PreTrainedModel, audio_window: str = "full"):
        self.encoder = encoder
        self.config = encoder.config
        self.audio_window = audio_window
        self.check_transformers_api()

    def check_transformers_api(self) -> None:
        """Raise TransformersAPIError when a private transformers member this adapter calls is gone."""

    @property
    def encoder_takes_mask(self) -> bool:
        # Group-norm front ends (wav2vec2-base, hubert-base, wavlm-base) were pretrained on unpadded
        # audio and are fed zero-padded input without a mask, as transformers advises.
        forward = inspect.signature(self.encoder.forward).parameters
        return getattr(self.config, "feat_extract_norm", "layer") != "group" and "attention_mask" in forward

    # -- the interface ------------------------------------------------------------------------------
    def front_end(
        self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What comes before the first dropout, on N rows: (features, mask the rest needs)."""
        return audio_inputs, audio_attention_mask if self.encoder_takes_mask else None

    def rest(self, features: torch.Tensor, mask: torch.Tensor | None, num_views: int) -> torch.Tensor:
        """Dropout + transformer on `num_views` stacked copies of the front end's output."""
        mask = None if mask is None else mask.repeat(num_views, 1)
        kwargs = {} if mask is None else {"attention_mask": mask}
        return self.encoder(_repeat_rows(features, num_views), **kwargs).last_hidden_state

    def encode(
        self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None, num_views: int = 1
    ) -> torch.Tensor:
        """Frame-level hidden states of `num_views` stacked copies of the batch, (k·N, frames, hidden)."""
        self.check_inputs(audio_inputs, audio_attention_mask)
        return self.rest(*self.front_end(audio_inputs, audio_attention_mask), num_views)

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor | None:
        """Output frames of the encoder for inputs of `input_lengths` samples (None: not known)."""
        lengths = getattr(self.encoder, "_get_feat_extract_output_lengths", None)
        return None if lengths is None else lengths(input_lengths)

    def frame_mask(self, audio_attention_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor | None:
        """Valid output frames (N, num_frames) from the input mask, also where the encoder takes none."""
        if audio_attention_mask is None:
            return None
        lengths = self.output_lengths(audio_attention_mask.sum(-1))
        if lengths is None:
            # An encoder without length arithmetic: its mask is usable only if it keeps the length.
            return audio_attention_mask.bool() if audio_attention_mask.shape[-1] == num_frames else None
        return torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]

    @property
    def receptive_field_samples(self) -> int | None:
        """Input samples that make one output frame; every clip needs that many (None: no such rule)."""
        return _samples_for_frames(self.config, 1)

    def min_samples(self, training: bool) -> int | None:
        """Fewest samples the longest clip of a batch needs (None: no such rule)."""
        return self.receptive_field_samples

    def check_inputs(self, audio_inputs: torch.Tensor, audio_attention_mask: torch.Tensor | None) -> None:
        """Raise ValueError on audio the encoder cannot take, saying what is wrong."""


class Wav2Vec2FamilyAdapter(AudioEncoderAdapter):
    """wav2vec2, HuBERT, WavLM, data2vec-audio: a convolutional front end without dropout, then
    feature projection (with dropout), SpecAugment, transformer and the optional adapter."""

    family = "wav2vec2-family"

    def check_transformers_api(self) -> None:
        encoder = self.encoder
        for module in ("feature_extractor", "feature_projection", "encoder"):
            require_member(encoder, module, family=self.family)
        require_member(encoder, "_mask_hidden_states", ("attention_mask",), self.family)
        # Models with an adapter must be asked for the transformer's frame mask without its downsampling.
        length_parameters = ("add_adapter",) if hasattr(encoder, "adapter") else ()
        require_member(encoder, "_get_feature_vector_attention_mask", length_parameters, self.family)
        require_member(encoder, "_get_feat_extract_output_lengths", family=self.family)

    @property
    def encoder_takes_mask(self) -> bool:
        # Layer-norm front ends (wav2vec2-large-lv60, data2vec-audio, which has no
        # `feat_extract_norm`) take the mask; group-norm ones do not (see the base class).
        return getattr(self.config, "feat_extract_norm", "layer") != "group"

    def front_end(self, audio_inputs, audio_attention_mask):
        features = self.encoder.feature_extractor(audio_inputs).transpose(1, 2)
        if audio_attention_mask is None or not self.encoder_takes_mask:
            return features, None
        length_kwargs = {"add_adapter": False} if hasattr(self.encoder, "adapter") else {}
        frame_mask = self.encoder._get_feature_vector_attention_mask(
            features.shape[1], audio_attention_mask, **length_kwargs
        )
        return features, frame_mask

    def rest(self, features, mask, num_views):
        # Mirrors Wav2Vec2Model.forward after its feature extractor.
        encoder = self.encoder
        mask = None if mask is None else mask.repeat(num_views, 1)
        projected = encoder.feature_projection(_repeat_rows(features, num_views))
        hidden_states = projected[0] if isinstance(projected, tuple) else projected
        hidden_states = encoder._mask_hidden_states(hidden_states, attention_mask=mask)
        hidden_states = encoder.encoder(hidden_states, attention_mask=mask).last_hidden_state
        if getattr(encoder, "adapter", None) is not None:
            hidden_states = encoder.adapter(hidden_states)
        return hidden_states

    def output_lengths(self, input_lengths):
        return self.encoder._get_feat_extract_output_lengths(input_lengths)

    def min_samples(self, training: bool) -> int | None:
        """One frame out of the conv front end, enough frames for the adapter's convolutions if there
        is one, and in training with SpecAugment one masked span (`mask_time_length` frames)."""
        config = self.config
        frames = 1
        if getattr(config, "add_adapter", False):
            # Adapter convolutions (padding 1) run after the transformer and must keep one frame.
            for _ in range(config.num_adapter_layers):
                frames = max(1, (frames - 1) * config.adapter_stride + config.adapter_kernel_size - 2)
        if training and getattr(config, "apply_spec_augment", False) and config.mask_time_prob > 0:
            frames = max(frames, config.mask_time_length)
        return _samples_for_frames(config, frames)

    def check_inputs(self, audio_inputs, audio_attention_mask):
        # Too little audio gives torch's "Kernel size can't be greater than actual input size" or
        # transformers' "`mask_length` has to be smaller than `sequence_length`", and a row under one
        # frame beside longer ones a pooled embedding over zero frames: say what is wrong instead.
        model_type, training = self.config.model_type, self.encoder.training
        width, whole_batch = audio_inputs.shape[-1], self.min_samples(training)
        if width < whole_batch:
            raise ValueError(
                f"audio too short for the {model_type} encoder: the longest utterance of the batch has "
                f"{width} samples, and it needs at least {whole_batch}{' in training' if training else ''} "
                "(see min_audio_samples)"
            )
        # Per-row lengths live in the mask; reading them on an accelerator would cost a host sync
        # every step, so there the training collator checks rows instead (`min_samples`).
        if audio_attention_mask is None or audio_attention_mask.device.type != "cpu":
            return
        per_row, lengths = self.receptive_field_samples, audio_attention_mask.sum(-1)
        if lengths.min().item() >= per_row:
            return
        short = {row: int(length) for row, length in enumerate(lengths.tolist()) if length < per_row}
        raise ValueError(
            f"audio too short for the {model_type} encoder: batch row(s) {short} (row: samples) have "
            f"fewer than the {per_row} samples of its receptive field, which make one frame"
        )


class WhisperAdapter(AudioEncoderAdapter):
    """Whisper's encoder: conv1 / conv2 (+ GELU) and positional embeddings before the first dropout,
    then dropout, the layers and a final layer norm (mirrors WhisperEncoder.forward).

    `WhisperEncoder.forward` refuses anything but the pretrained window (30 s of log-mel frames).
    With `audio_window="batch"` the processor featurizes only up to the batch's longest clip and this
    adapter runs the parts itself, with the matching slice of the positional embeddings (the saved
    weights are untouched). Whisper attends to its padding (it takes no mask), so the window changes
    what the encoder sees; pooling counts only the frames of real audio either way.
    """

    family = "whisper"

    def check_transformers_api(self) -> None:
        for member in ("conv1", "conv2", "embed_positions", "layers", "layer_norm"):
            require_member(self.encoder, member, family=self.family)
        for member in ("_get_feat_extract_output_lengths", "dropout", "layerdrop"):
            require_member(self.encoder, member, family=self.family)

    @property
    def encoder_takes_mask(self) -> bool:
        return False

    @property
    def full_window_frames(self) -> int:
        """Log-mel frames of the pretrained window (3000 for 30 s)."""
        encoder = self.encoder
        return self.config.max_source_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0]

    def front_end(self, audio_inputs, audio_attention_mask):
        encoder = self.encoder
        embeds = nn.functional.gelu(encoder.conv1(audio_inputs))
        embeds = nn.functional.gelu(encoder.conv2(embeds)).permute(0, 2, 1)
        return embeds + encoder.embed_positions.weight[: embeds.shape[1]], None

    def rest(self, features, mask, num_views):
        encoder = self.encoder
        hidden_states = _repeat_rows(features, num_views)
        hidden_states = nn.functional.dropout(hidden_states, p=encoder.dropout, training=encoder.training)
        for layer in encoder.layers:
            # LayerDrop as WhisperEncoder draws it: one decision per layer for the whole batch.
            if encoder.training and encoder.layerdrop > 0.0 and torch.rand([]) < encoder.layerdrop:
                continue
            hidden_states = layer(hidden_states, None)
        return encoder.layer_norm(hidden_states)

    def output_lengths(self, input_lengths):
        return self.encoder._get_feat_extract_output_lengths(input_lengths)

    @property
    def receptive_field_samples(self) -> None:
        return None  # any clip makes frames: the processor pads to a whole window

    def min_samples(self, training: bool) -> None:
        return None

    def check_inputs(self, audio_inputs, audio_attention_mask):
        frames, full = audio_inputs.shape[-1], self.full_window_frames
        if self.audio_window == "full" and frames != full:
            raise ValueError(
                f"the whisper encoder runs on its pretrained window of {full} log-mel frames "
                f"(audio_window='full'), got {frames}: featurize with a TurboProcessor whose audio_window "
                "is the model's (config.audio_window)"
            )
        if frames > full:
            raise ValueError(f"the whisper encoder takes at most {full} log-mel frames, got {frames}")
        # A model of audio_window="batch" fed features padded further than the batch window would
        # silently see other inputs than in training. The mask is read on the CPU only (host sync).
        if audio_attention_mask is None or audio_attention_mask.device.type != "cpu":
            return
        longest = int(audio_attention_mask.sum(-1).max())
        if self.audio_window == "batch" and frames - longest >= AUDIO_WINDOW_STEP_FRAMES:
            raise ValueError(
                f"audio_window='batch': the batch holds {frames} log-mel frames but its longest clip only "
                f"{longest}; the features were padded further than the batch window (a processor with "
                "audio_window='full'?). Featurize with a TurboProcessor whose audio_window is the model's"
            )


def audio_encoder_adapter(encoder: PreTrainedModel, audio_window: str = "full") -> AudioEncoderAdapter:
    """The adapter of `encoder`'s family (the plain fallback for families without one)."""
    model_type = encoder.config.model_type
    if model_type in WAV2VEC2_FAMILY:
        return Wav2Vec2FamilyAdapter(encoder, audio_window)
    if model_type == "whisper":
        return WhisperAdapter(encoder, audio_window)
    logger.info("the %s audio encoder runs whole on every view (no front-end adapter)", model_type)
    return AudioEncoderAdapter(encoder, audio_window)


def _repeat_rows(tensor: torch.Tensor, num_views: int) -> torch.Tensor:
    return tensor if num_views == 1 else tensor.repeat(num_views, *([1] * (tensor.dim() - 1)))


def _samples_for_frames(config, frames: int) -> int | None:
    """Input samples that a convolutional front end (`conv_kernel`, `conv_stride`) needs for `frames`."""
    if not hasattr(config, "conv_kernel"):
        return None
    needed = frames
    for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        needed = (needed - 1) * stride + kernel
    return needed


__all__ = [
    "AudioEncoderAdapter",
    "Wav2Vec2FamilyAdapter",
    "WhisperAdapter",
    "TransformersAPIError",
    "audio_encoder_adapter",
    "build_audio_encoder",
    "load_audio_encoder",
    "require_member",
]
