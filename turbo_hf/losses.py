"""Turbo's contrastive losses: InfoNCE over cosine similarities, the six-term Turbo loss, and the
cross-process gather that lets every process use the whole global batch as negatives; and the
"balanced" class weights of the classifier's cross-entropy.

Optionally (`TurboConfig.duplicate_negatives="mask"`) rows whose transcripts are token-identical are
not each other's negatives in the terms that compare with text: two utterances of one sentence are
then not pushed apart for sharing their words. The paper keeps them (the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from transformers.utils import logging

logger = logging.get_logger(__name__)


def balanced_class_weights(labels: Sequence[int], class_names: Sequence[str]) -> list[float]:
    """Cross-entropy weights that make every class of `labels` count alike: N / (C * count of the class),
    as scikit-learn's "balanced" (`TurboConfig.class_weights="balanced"` in the recipes). A class
    without any row has no such weight: an error naming it."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    if len(counts) > len(class_names):
        raise ValueError(
            f"label id {len(counts) - 1} is outside the {len(class_names)} classes {list(class_names)}"
        )
    empty = [name for name, count in zip(class_names, counts) if count == 0]
    if empty:
        raise ValueError(
            f"class_weights='balanced' needs every class in the training labels; {empty} have none "
            "(give explicit class_weights instead)"
        )
    return (counts.sum() / (len(class_names) * counts)).tolist()


def _distributed_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def exchange_sizes(sizes: Sequence[int], device: torch.device | str | None = None) -> list[list[int]]:
    """Every process's `sizes` (a few integers), in rank order: one all_gather and one read to the host.

    Without torch.distributed, or with one process, `[list(sizes)]` at no cost.
    """
    world_size, _ = _distributed_world()
    if world_size == 1:
        return [list(sizes)]
    local = torch.tensor(list(sizes), dtype=torch.long, device=device)
    gathered = torch.empty(world_size, local.numel(), dtype=torch.long, device=device)
    dist.all_gather(list(gathered.unbind(0)), local)
    return gathered.tolist()


def gather_with_grad(
    features: torch.Tensor, row_counts: Sequence[int] | None = None
) -> tuple[torch.Tensor, int]:
    """Concatenate `features` from every process, keeping the autograd graph.

    Returns the gathered rows and the offset of this process's rows among them. Processes may hold
    different numbers of rows (the last batch of an epoch): rows are padded for the collective and
    trimmed after. `row_counts` (every process's rows, in rank order) saves exchanging them here,
    one collective and one host sync: pass what `exchange_sizes` returned for the step, or
    `[rows] * world_size` when batches are known to be even. Backward sums, on each process, the
    gradients that all processes' losses send to its rows, so averaging parameter gradients over
    processes (DDP) gives the gradient of the mean loss. Without torch.distributed, or with one
    process, this is the identity.
    """
    world_size, rank = _distributed_world()
    if world_size == 1:
        return features, 0
    # Imported here: torch.distributed.nn pulls in RPC machinery that single-process users never need.
    from torch.distributed.nn.functional import all_gather

    if row_counts is None:
        row_counts = [rows for (rows,) in exchange_sizes([features.shape[0]], features.device)]
    padded = F.pad(features, (0, 0, 0, max(row_counts) - features.shape[0]))
    gathered = all_gather(padded)
    return torch.cat([part[:n] for part, n in zip(gathered, row_counts)]), sum(row_counts[:rank])


class _GatheredKeys(NamedTuple):
    views: list[torch.Tensor]  # each key view with the rows of every process
    offset: int  # where this process's rows start among them
    excluded: torch.Tensor | None  # (local rows, all rows): same transcript, not the positive


def _gather_keys(
    views: Sequence[torch.Tensor], transcripts: torch.Tensor | None, gather_across_processes: bool
) -> _GatheredKeys:
    """The key views of every process for one step's InfoNCE terms, and with `transcripts` the keys
    that are not negatives of each local row (`duplicate_negatives="mask"`).

    The sizes (rows, transcript width) are exchanged once, and all views travel in one collective, side
    by side: 2 collectives and 1 host sync per step (3 collectives with transcripts), however many
    views, instead of 2 collectives and a sync per view.
    """
    all_transcripts = transcripts
    if not gather_across_processes or _distributed_world()[0] == 1:
        gathered, offset = list(views), 0
    else:
        sizes = [views[0].shape[0]] + ([] if transcripts is None else [transcripts.shape[1]])
        peers = exchange_sizes(sizes, views[0].device)
        row_counts = [peer[0] for peer in peers]
        side_by_side, offset = gather_with_grad(torch.cat(list(views), dim=1), row_counts)
        gathered = list(side_by_side.split([view.shape[1] for view in views], dim=1))
        if transcripts is not None:
            width = max(peer[1] for peer in peers)
            padded = F.pad(transcripts, (0, width - transcripts.shape[1]), value=-1)
            all_transcripts = gather_with_grad(padded, row_counts)[0]
    if gathered[0].shape[0] == 1:
        # Known from shapes alone (no sync): the only key is the positive, so every term is exactly 0.
        logger.warning_once(
            "InfoNCE over a batch of 1 row (over all processes when they are gathered) has no negatives: "
            "the in-modal and cross-modal loss terms are exactly 0 and only the cross-entropy trains (loss = "
            "ce_weight * CE). Train on batches of at least 2 rows: raise per_device_train_batch_size, or "
            "set dataloader_drop_last=True when the last batch of an epoch holds a single row."
        )
    excluded = None if transcripts is None else _duplicate_negatives(transcripts, all_transcripts, offset)
    return _GatheredKeys(gathered, offset, excluded)


def transcript_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Token ids of each transcript with its real tokens first and -1 after them, shape (N, L).

    Two rows are equal exactly when the transcripts are token-identical, whichever side the tokenizer
    pads and however long the batch is padded; `info_nce(..., transcripts=...)` compares them.
    """
    ids = input_ids.long()
    if attention_mask is None:
        return ids
    real = attention_mask.bool()
    first_real = torch.argsort((~real).to(torch.int8), dim=1, stable=True)
    return torch.where(real, ids, -1).gather(1, first_real)


def _duplicate_negatives(
    transcripts: torch.Tensor, key_transcripts: torch.Tensor, offset: int
) -> torch.Tensor:
    """(N, M) true where key j has query i's transcript but is not its positive (key offset + i)."""
    width = max(transcripts.shape[1], key_transcripts.shape[1])
    query_rows = F.pad(transcripts, (0, width - transcripts.shape[1]), value=-1)
    key_rows = F.pad(key_transcripts, (0, width - key_transcripts.shape[1]), value=-1)
    same = (query_rows[:, None, :] == key_rows[None, :, :]).all(dim=-1)
    rows = torch.arange(same.shape[0], device=same.device)
    same[rows, rows + offset] = False
    return same


def _info_nce_against(
    query: torch.Tensor,
    keys: torch.Tensor,
    offset: int,
    temperature: float,
    excluded: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE of local queries against (possibly gathered) keys; query i's positive is key offset+i,
    and keys where `excluded[i]` is true are not among its negatives."""
    # Similarities divided by a small tau overflow half precision: compute in fp32 even under autocast.
    with torch.autocast(device_type=query.device.type, enabled=False):
        query = F.normalize(query.float(), dim=-1)
        keys = F.normalize(keys.float(), dim=-1)
        logits = query @ keys.T / temperature
        if excluded is not None:
            logits = logits.masked_fill(excluded, float("-inf"))
        targets = torch.arange(query.shape[0], device=query.device) + offset
        return F.cross_entropy(logits, targets)


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    temperature: float = 0.05,
    gather_across_processes: bool = True,
    transcripts: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE(query, key): mean over rows i of -log softmax_j(cos(q_i, k_j) / tau)[i].

    Row i of `key` is the positive of row i of `query`; every other row is a negative. With
    `gather_across_processes` and an initialised process group, the keys of all processes are the
    columns, so the mean of the per-process losses equals the loss of one process on the whole batch.
    `transcripts` (`transcript_rows` of the batch's rows): keys whose transcript equals row i's are
    left out of row i's negatives.
    """
    if query.shape != key.shape:
        raise ValueError(
            f"info_nce needs query and key of the same shape, got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    (keys,), offset, excluded = _gather_keys([key], transcripts, gather_across_processes)
    return _info_nce_against(query, keys, offset, temperature, excluded)


def in_modal_loss(
    audio_1: torch.Tensor,
    text_1: torch.Tensor,
    audio_2: torch.Tensor,
    text_2: torch.Tensor,
    temperature: float = 0.05,
    gather_across_processes: bool = True,
    transcripts: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE(a1, a2) + InfoNCE(t1, t2), the in-modal terms alone (`loss_mode="in_modal"`), with the
    keys of both gathered in one collective. `transcripts` masks duplicates in the text term only."""
    (audio_keys, text_keys), offset, excluded = _gather_keys(
        [audio_2, text_2], transcripts, gather_across_processes
    )
    audio_audio = _info_nce_against(audio_1, audio_keys, offset, temperature)
    return audio_audio + _info_nce_against(text_1, text_keys, offset, temperature, excluded)


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
    transcripts: torch.Tensor | None = None,
) -> TurboLossTerms:
    """The six InfoNCE terms of Turbo for two dropout views (a1, t1) and (a2, t2) of one batch.

    `transcripts` (`transcript_rows` of the batch): in the five terms whose keys are text or whose
    queries and keys are text, rows with identical transcripts are not each other's negatives;
    InfoNCE(a1, a2) keeps every negative (two recordings differ even when their words do not).
    """
    (a2, t1, t2), offset, excluded = _gather_keys(
        [audio_2, text_1, text_2], transcripts, gather_across_processes
    )

    def term(query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = excluded) -> torch.Tensor:
        return _info_nce_against(query, keys, offset, temperature, mask)

    return TurboLossTerms(
        audio_audio=term(audio_1, a2, mask=None),
        text_text=term(text_1, t2),
        a1_t1=term(audio_1, t1),
        a1_t2=term(audio_1, t2),
        a2_t1=term(audio_2, t1),
        a2_t2=term(audio_2, t2),
    )


def turbo_loss(
    audio_1: torch.Tensor,
    text_1: torch.Tensor,
    audio_2: torch.Tensor,
    text_2: torch.Tensor,
    temperature: float = 0.05,
    gather_across_processes: bool = True,
    transcripts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Turbo loss: InfoNCE(a1,a2) + InfoNCE(t1,t2) + InfoNCE(a1,t1) + InfoNCE(a1,t2) + InfoNCE(a2,t1)
    + InfoNCE(a2,t2). The parts (and what `transcripts` does) are in `turbo_loss_terms`."""
    terms = turbo_loss_terms(
        audio_1, text_1, audio_2, text_2, temperature, gather_across_processes, transcripts
    )
    return terms.total


__all__ = [
    "balanced_class_weights",
    "exchange_sizes",
    "in_modal_loss",
    "info_nce",
    "turbo_loss",
    "turbo_loss_terms",
    "TurboLossTerms",
    "gather_with_grad",
    "transcript_rows",
]
