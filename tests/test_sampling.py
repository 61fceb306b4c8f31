"""DurationGroupedSampler: a permutation per epoch, reproducible, less padding, usable by the Trainer."""

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from turbo_hf.sampling import DurationGroupedSampler, padding_ratio


def _durations(n: int = 2000, seed: int = 0) -> list[float]:
    """IEMOCAP-like spread: log-normal around 3 s, from 0.5 s to 30 s."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(3.0), 0.65, size=n), 0.5, 30.0).tolist()


def test_padding_ratio_by_hand():
    lengths = [1.0, 2.0, 4.0, 4.0, 3.0]
    # batches [1, 2] -> 2 * 2, [4, 4] -> 2 * 4, [3] -> 1 * 3; real total 14
    assert padding_ratio(lengths, range(5), batch_size=2) == pytest.approx((4 + 8 + 3) / 14)
    assert padding_ratio(lengths, [2, 3, 4, 1, 0], batch_size=1) == 1.0


@pytest.mark.parametrize(
    "n, batch_size, factor, processes",
    [(2000, 8, 100, 1), (1001, 8, 3, 1), (1001, 16, 5, 4), (5, 8, 100, 1), (97, 4, 7, 3)],
)
def test_every_index_exactly_once_per_epoch(n, batch_size, factor, processes):
    sampler = DurationGroupedSampler(
        _durations(n), batch_size, mega_batch_factor=factor, seed=1, num_processes=processes
    )
    assert len(sampler) == n
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert sorted(sampler) == list(range(n))


def test_order_is_fixed_by_seed_and_epoch():
    lengths = _durations(500)
    first, same = DurationGroupedSampler(lengths, 8, seed=3), DurationGroupedSampler(lengths, 8, seed=3)
    assert list(first) == list(same)
    assert list(first) == list(first)  # iterating again repeats the epoch
    other_seed = DurationGroupedSampler(lengths, 8, seed=4)
    assert list(first) != list(other_seed)
    epoch_0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch_0


@pytest.mark.parametrize("batch_size", [8, 32])
def test_grouped_batches_pad_far_less_than_random_ones(batch_size):
    lengths = _durations(3000)
    sampler = DurationGroupedSampler(lengths, batch_size, seed=0)
    grouped = padding_ratio(lengths, list(sampler), batch_size)
    shuffled = padding_ratio(lengths, np.random.default_rng(0).permutation(3000), batch_size)
    assert grouped <= 1.10
    assert shuffled > 1.5


def test_batch_order_is_shuffled_and_longest_batch_comes_first():
    lengths = _durations(1600)
    order = np.array(list(DurationGroupedSampler(lengths, 8, mega_batch_factor=200, seed=0)))
    batch_maxima = np.asarray(lengths)[order].reshape(-1, 8).max(axis=1)
    assert batch_maxima[0] == max(lengths)
    # A single sorted mega-batch served in order would make the batch maxima monotone.
    assert np.any(np.diff(batch_maxima[1:]) > 0) and np.any(np.diff(batch_maxima[1:]) < 0)


def test_only_the_last_batch_is_short_so_batches_stay_aligned():
    lengths = _durations(1003)
    sampler = DurationGroupedSampler(lengths, 8, mega_batch_factor=10, length_jitter=0.0, seed=0)
    order = list(sampler)
    batches = [order[i : i + 8] for i in range(0, 1003, 8)]
    # Without jitter every full batch comes from one sorted run: members never increase in length.
    for batch in batches[:-1]:
        batch_lengths = [lengths[i] for i in batch]
        assert batch_lengths == sorted(batch_lengths, reverse=True)
    assert len(batches[-1]) == 1003 % 8


def test_num_processes_keeps_neighbouring_batches_together():
    lengths = _durations(1200)
    order = list(
        DurationGroupedSampler(lengths, 8, mega_batch_factor=15, length_jitter=0.0, seed=0, num_processes=2)
    )
    batches = [[lengths[i] for i in order[s : s + 8]] for s in range(0, 1200, 8)]
    # Process 0 and 1 of one step get two adjacent slices of one sorted mega-batch.
    for step in range(len(batches) // 2):
        assert min(batches[2 * step]) >= max(batches[2 * step + 1])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="batch_size"):
        DurationGroupedSampler([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="non-empty"):
        DurationGroupedSampler([], 4)
    with pytest.raises(ValueError, match="length_jitter"):
        DurationGroupedSampler([1.0, 2.0], 1, length_jitter=-0.1)


def _batch_sets(order, batch_size):
    return {frozenset(order[s : s + batch_size]) for s in range(0, len(order) - batch_size + 1, batch_size)}


def test_batches_change_from_epoch_to_epoch_when_one_mega_batch_holds_the_data():
    # IEMOCAP's training split at the paper's batch: 4,400 rows, 69 batches, less than one mega-batch.
    lengths, batch_size = _durations(4400), 64
    epochs = {}
    for jitter in (0.0, 0.03):
        sampler = DurationGroupedSampler(lengths, batch_size, length_jitter=jitter, seed=0)
        epochs[jitter] = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            epochs[jitter].append(list(sampler))
    exact, jittered = epochs[0.0], epochs[0.03]
    # Sorted exactly, the whole dataset falls into the same batches every epoch (only their order moves).
    assert _batch_sets(exact[0], batch_size) == _batch_sets(exact[1], batch_size)
    assert not _batch_sets(jittered[0], batch_size) & _batch_sets(jittered[1], batch_size)
    assert padding_ratio(lengths, jittered[1], batch_size) <= 1.10


class _LengthTrainer(Trainer):
    def _get_train_sampler(self, train_dataset=None):
        lengths = [example["length"] for example in self.train_dataset]
        return DurationGroupedSampler(lengths, self._train_batch_size, seed=self.args.seed)


def test_trainer_dataloader_serves_the_samplers_batches_and_forwards_set_epoch(tmp_path):
    lengths = _durations(100)
    dataset = [{"index": i, "length": length} for i, length in enumerate(lengths)]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        report_to="none",
        use_cpu=True,
        seed=5,
        remove_unused_columns=False,
    )
    trainer = _LengthTrainer(
        model=torch.nn.Linear(1, 1),
        args=args,
        train_dataset=dataset,
        data_collator=lambda examples: {"index": torch.tensor([e["index"] for e in examples])},
    )
    loader = trainer.get_train_dataloader()
    expected = DurationGroupedSampler(lengths, 8, seed=5)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        expected.set_epoch(epoch)
        served = [batch["index"].tolist() for batch in loader]
        order = list(expected)
        assert served == [order[i : i + 8] for i in range(0, 100, 8)]
