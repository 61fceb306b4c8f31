"""How Turbo drives a text encoder: built without its unused pooler, k views as one batch, pooled."""

from __future__ import annotations

import inspect

import torch
from transformers import AutoModel, PreTrainedModel

from .audio_encoders import require_member
from .pooling import last_token, masked_mean


def text_encoder_init_kwargs(config) -> dict:
    """Keyword arguments that build the text encoder of `config` without its pooler.

    BERT-like models carry a pooler (dense + tanh) that Turbo never uses; left in, its parameters get
    no gradient and DistributedDataParallel without find_unused_parameters fails.
    """
    require_member(AutoModel, "_model_mapping", family="text")
    model_class = AutoModel._model_mapping.get(type(config), None)
    if model_class is None:
        return {}  # AutoModel itself then says that it does not know the config
    accepts_pooler_flag = "add_pooling_layer" in inspect.signature(model_class.__init__).parameters
    return {"add_pooling_layer": False} if accepts_pooler_flag else {}


def build_text_encoder(config) -> PreTrainedModel:
    """A randomly initialised text encoder for `config`, without its pooler."""
    return AutoModel.from_config(config, **text_encoder_init_kwargs(config))


def load_text_encoder(name_or_path: str, config, kwargs: dict) -> PreTrainedModel:
    """The pretrained text encoder at `name_or_path`, configured by `config`, without its pooler."""
    return AutoModel.from_pretrained(
        name_or_path, config=config, **text_encoder_init_kwargs(config), **kwargs
    )


def pool_text(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """One vector per transcript: the first token ("cls"), the masked mean ("mean") or the last real
    token ("last", for decoder-only encoders, which see the whole text only there)."""
    if pooling == "cls":
        return hidden_states[:, 0]
    if pooling == "mean":
        return masked_mean(hidden_states, attention_mask)
    return last_token(hidden_states, attention_mask)


class TextEncoderAdapter:
    """Runs the text encoder on k stacked copies of the batch (one dropout mask per row) and pools."""

    def __init__(self, encoder: PreTrainedModel, pooling: str):
        self.encoder = encoder
        self.pooling = pooling

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        num_views: int = 1,
    ) -> torch.Tensor:
        """Pooled transcripts of `num_views` stacked copies of the batch, (k·N, hidden)."""

        def stack(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.repeat(num_views, 1)

        inputs = {"input_ids": stack(input_ids), "attention_mask": stack(attention_mask)}
        if token_type_ids is not None:
            inputs["token_type_ids"] = stack(token_type_ids)
        hidden_states = self.encoder(**inputs).last_hidden_state
        return pool_text(hidden_states, inputs["attention_mask"], self.pooling)


__all__ = [
    "TextEncoderAdapter",
    "build_text_encoder",
    "load_text_encoder",
    "pool_text",
    "text_encoder_init_kwargs",
]
