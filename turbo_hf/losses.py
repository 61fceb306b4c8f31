"""Turbo's contrastive losses: InfoNCE over cosine similarities, the six-term Turbo loss, and the
cross-process gather that lets every process use the whole global batch as negatives."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _distributed_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather_with_grad(features: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate `features` from every process, keeping the autograd graph.

    Returns the gathered rows and the offset of this process's rows among them. Processes may hold
    different numbers of rows (the last batch of an epoch): rows are padded for the collective and
    trimmed after. Backward sums, on each process, the gradients that all processes' losses send to
    its rows, so averaging parameter gradients over processes (DDP) gives the gradient of the mean
    loss. Without torch.distributed, or with one process, this is the identity.
    """
    world_size, rank = _distributed_world()
    if world_size == 1:
        return features, 0
    # Imported here: torch.distributed.nn pulls in RPC machinery that single-process users never need.
    from torch.distributed.nn.functional import all_gather

    local_rows = torch.tensor([features.shape[0]], device=features.device)
    all_rows = [torch.zeros_like(local_rows) for _ in range(world_size)]
    dist.all_gather(all_rows, local_rows)
    rows = [int(r.item()) for r in all_rows]
    padded = F.pad(features, (0, 0, 0, max(rows) - features.shape[0]))
    gathered = all_gather(padded)
    return torch.cat([part[:n] for part, n in zip(gathered, rows)]), sum(rows[:rank])


def _info_nce_against(
    query: torch.Tensor, keys: torch.Tensor, offset: int, temperature: float
) -> torch.Tensor:
    """InfoNCE of local queries against (possibly gathered) keys; query i's positive is key offset+i."""
    # Similarities divided by a small tau overflow half precision: compute in fp32 even under autocast.
    with torch.autocast(device_type=query.device.type, enabled=False):
        query = F.normalize(query.float(), dim=-1)
        keys = F.normalize(keys.float(), dim=-1)
        logits = query @ keys.T / temperature
        targets = torch.arange(query.shape[0], device=query.device) + offset
        return F.cross_entropy(logits, targets)


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    temperature: float = 0.05,
    gather_across_processes: bool = True,
) -> torch.Tensor:
    """InfoNCE(query, key): mean over rows i of -log softmax_j(cos(q_i, k_j) / tau)[i].

    Row i of `key` is the positive of row i of `query`; every other row is a negative. With
    `gather_across_processes` and an initialised process group, the keys of all processes are the
    columns, so the mean of the per-process losses equals the loss of one process on the whole batch.
    """
    if query.shape != key.shape:
        raise ValueError(
            f"info_nce needs query and key of the same shape, got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    keys, offset = gather_with_grad(key) if gather_across_processes else (key, 0)
    return _info_nce_against(query, keys, offset, temperature)


class TurboLossTerms(NamedTuple):
    """The six InfoNCE terms of the Turbo loss, grouped as in-modal and cross-modal."""

    audio_audio: torch.Tensor  # InfoNCE(a1, a2)
    text_text: torch.Tensor  # InfoNCE(t1, t2)
    a1_t1: torch.Tensor
    a1_t2: torch.Tensor
    a2_t1: torch.Tensor
    a2_t2: torch.Tensor

    @property
    def in_modal(self) -> torch.Tensor:
        return self.audio_audio + self.text_text

    @property
    def cross_modal(self) -> torch.Tensor:
        return self.a1_t1 + self.a1_t2 + self.a2_t1 + self.a2_t2

    @property
    def total(self) -> torch.Tensor:
        return self.in_modal + self.cross_modal


def turbo_loss_terms(
    audio_1: torch.Tensor,
    text_1: torch.Tensor,
    audio_2: torch.Tensor,
    text_2: torch.Tensor,
    temperature: float = 0.05,
    gather_across_processes: bool = True,
) -> TurboLossTerms:
    """The six InfoNCE terms of Turbo for two dropout views (a1, t1) and (a2, t2) of one batch."""
    keys = {}
    for name, view in (("a2", audio_2), ("t1", text_1), ("t2", text_2)):
        keys[name] = gather_with_grad(view) if gather_across_processes else (view, 0)

    def term(query: torch.Tensor, key_name: str) -> torch.Tensor:
        gathered, offset = keys[key_name]
        return _info_nce_against(query, gathered, offset, temperature)

    return TurboLossTerms(
        audio_audio=term(audio_1, "a2"),
        text_text=term(text_1, "t2"),
        a1_t1=term(audio_1, "t1"),
        a1_t2=term(audio_1, "t2"),
        a2_t1=term(audio_2, "t1"),
        a2_t2=term(audio_2, "t2"),
    )


def turbo_loss(
    audio_1: torch.Tensor,
    text_1: torch.Tensor,
    audio_2: torch.Tensor,
    text_2: torch.Tensor,
    temperature: float = 0.05,
    gather_across_processes: bool = True,
) -> torch.Tensor:
    """Turbo loss: InfoNCE(a1,a2) + InfoNCE(t1,t2) + InfoNCE(a1,t1) + InfoNCE(a1,t2) + InfoNCE(a2,t1)
    + InfoNCE(a2,t2). The parts are available from `turbo_loss_terms`."""
    return turbo_loss_terms(audio_1, text_1, audio_2, text_2, temperature, gather_across_processes).total


__all__ = ["info_nce", "turbo_loss", "turbo_loss_terms", "TurboLossTerms", "gather_with_grad"]
