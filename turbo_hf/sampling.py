"""Duration-grouped batching: less padding for audio of very uneven length, batches still in random order.

Each utterance of a batch is padded to the batch's longest, so random batches over IEMOCAP-like
durations (0.5 s to 30 s) feed the encoder two to five times more samples than there is audio.
`transformers.trainer_pt_utils.LengthGroupedSampler` sorts within mega-batches, but caps their size at
a quarter of the dataset's batches and serves each mega-batch longest to shortest, so its padding grows
with the batch size and consecutive steps run through one length range after another.
`DurationGroupedSampler` keeps mega-batches at a fixed number of batches, jitters the sort a little
so that batches are not the same every epoch, and then shuffles whole batches;
`benchmarks/bench_padding.py` measures both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def padding_ratio(lengths: Sequence[float], indices: Sequence[int], batch_size: int) -> float:
    """Padded size over real size when `indices` are cut into consecutive batches of `batch_size`.

    The sum over batches of (batch rows x longest length) divided by the sum of all lengths: 1.0 means
    no padding at all. A last, smaller batch counts with its own size.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    order = np.asarray(list(indices), dtype=np.int64)
    if order.size == 0:
        raise ValueError("padding_ratio needs at least one index")
    padded = 0.0
    for start in range(0, len(order), batch_size):
        batch = lengths[order[start : start + batch_size]]
        padded += len(batch) * batch.max()
    return float(padded / lengths[order].sum())


class DurationGroupedSampler(Sampler[int]):
    """Yields indices so that every `batch_size` consecutive ones have similar lengths.

    Per epoch: shuffle all indices, cut them into mega-batches of `mega_batch_factor * batch_size`, sort
    each mega-batch by length, each length scaled by a random factor within `length_jitter` drawn anew
    every epoch, and cut it into batches, then shuffle the order of the full batches (the
    one smaller batch, if any, comes last so that later batches stay aligned). With `longest_first`,
    the batch holding the longest utterance runs first, so that an out-of-memory error shows at step 1.

    The order depends only on `seed` and the epoch given to `set_epoch` (the Trainer calls it every
    epoch, through accelerate), so every process of a distributed run draws the same sequence.

    Use with the Trainer by overriding `_get_train_sampler` to return
    `DurationGroupedSampler(lengths, self._train_batch_size, seed=self.args.seed)`: `batch_size` must be
    the per-device batch the DataLoader cuts the sequence into, or batches straddle two groups. In
    distributed training accelerate hands batch `k` of this sequence to process `k % num_processes`;
    `num_processes` keeps that many batches of neighbouring lengths together, so the processes of one
    step wait less on each other.

    Args:
        lengths: one length per example (seconds or samples; only the order matters).
        batch_size: examples per (per-device) batch.
        mega_batch_factor: batches per sorted mega-batch (rounded up to a multiple of `num_processes`);
            larger means less padding but batches whose members recur from epoch to epoch (the same
            neighbours in length).
        length_jitter: half-width, in log-length, of the random factor applied to every length before
            sorting (0.03: within about 3%). Utterances of nearly equal length then trade places from
            epoch to epoch, so which utterances share a batch (and with it the in-batch negatives of a
            contrastive loss) changes every epoch; with 0 and one mega-batch holding the whole dataset,
            every epoch would run the very same batches. Costs a little padding
            (`benchmarks/bench_padding.py`).
        seed: seed of the shuffles, combined with the epoch.
        num_processes: consecutive batches kept together when shuffling (the data-parallel world size).
        longest_first: put the group holding the longest example first.
    """

    def __init__(
        self,
        lengths: Sequence[float],
        batch_size: int,
        mega_batch_factor: int = 100,
        length_jitter: float = 0.03,
        seed: int = 0,
        num_processes: int = 1,
        longest_first: bool = True,
    ):
        if isinstance(lengths, torch.Tensor):
            lengths = lengths.tolist()
        self.lengths = np.asarray(lengths, dtype=np.float64)
        if self.lengths.ndim != 1 or self.lengths.size == 0:
            raise ValueError(f"lengths must be a non-empty list of numbers; got shape {self.lengths.shape}")
        for name, value in (
            ("batch_size", batch_size),
            ("mega_batch_factor", mega_batch_factor),
            ("num_processes", num_processes),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not length_jitter >= 0:
            raise ValueError(f"length_jitter must be >= 0; got {length_jitter!r}")
        self.batch_size = batch_size
        self.length_jitter = length_jitter
        self.mega_batch_factor = mega_batch_factor
        self.seed = seed
        self.num_processes = num_processes
        self.longest_first = longest_first
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order `__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def _order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        permutation = rng.permutation(len(self.lengths))
        # Whole groups of num_processes batches per mega-batch, so that no group straddles two of them.
        batches_per_mega_batch = -(-self.mega_batch_factor // self.num_processes) * self.num_processes
        mega_batch_size = batches_per_mega_batch * self.batch_size
        sort_keys = self.lengths * np.exp(
            rng.uniform(-self.length_jitter, self.length_jitter, len(self.lengths))
        )
        batches = []
        for start in range(0, len(permutation), mega_batch_size):
            mega_batch = permutation[start : start + mega_batch_size]
            # Stable sort keeps the random order among equal keys.
            mega_batch = mega_batch[np.argsort(-sort_keys[mega_batch], kind="stable")]
            batches.extend(np.split(mega_batch, range(self.batch_size, len(mega_batch), self.batch_size)))
        # Only the last mega-batch can end in a short batch; it must stay at the end of the sequence.
        tail = [batches.pop()] if len(batches[-1]) < self.batch_size else []
        grouped = len(batches) - len(batches) % self.num_processes
        groups = [
            batches[start : start + self.num_processes] for start in range(0, grouped, self.num_processes)
        ]
        # Full batches that do not fill a group of num_processes run just before the short one.
        tail = batches[grouped:] + tail
        group_order = rng.permutation(len(groups))
        if self.longest_first and groups:
            longest = self.lengths.argmax()
            holder = next(
                (g for g, group in enumerate(groups) if any(np.any(b == longest) for b in group)), None
            )
            if holder is not None:  # else it sits in the tail, which must stay last
                group_order = np.r_[holder, group_order[group_order != holder]]
        ordered = [batch for g in group_order for batch in groups[g]] + tail
        return np.concatenate(ordered)


__all__ = ["DurationGroupedSampler", "padding_ratio"]
