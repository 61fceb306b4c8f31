"""Pooling over the time axis of (batch, time, hidden) encoder outputs, counting only real positions."""

from __future__ import annotations

import torch


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


__all__ = ["masked_mean", "last_token"]
