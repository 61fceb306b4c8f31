"""Padding overhead of random vs length-grouped batches on IEMOCAP-like utterance durations.

Prints, per batch size, padded samples / real samples (1.00 = no padding) for
  (a) random batches (the Trainer's default RandomSampler),
  (b) transformers' LengthGroupedSampler, built as the Trainer builds it for
      train_sampling_strategy="group_by_length" with the durations as the length column,
  (c) turbo_hf.sampling.DurationGroupedSampler.
Each number is the mean over --epochs epochs. A second table gives, for the same samplers, the share of
a row's batch-mates in one epoch that are its batch-mates again in the next: how much the in-batch
negatives of a contrastive loss repeat (random batches: about batch size / dataset size). Durations are log-normal (median --median s, log-std
--sigma) clipped to [--min-duration, --max-duration]; the defaults give mean ~3.7 s, close to the
~4.5 s of IEMOCAP's 5,531 four-class utterances (about 7 h), with a tail up to 30 s.

    python benchmarks/bench_padding.py
    python benchmarks/bench_padding.py --batch-sizes 8 --crop 15   # training crops, max_duration=15
"""

import argparse

import numpy as np
import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from turbo_hf.sampling import DurationGroupedSampler, padding_ratio


def _durations(args: argparse.Namespace) -> np.ndarray:
    rng = np.random.default_rng(args.seed)
    durations = rng.lognormal(np.log(args.median), args.sigma, size=args.num_utterances)
    durations = np.clip(durations, args.min_duration, args.max_duration)
    if args.crop is not None:
        # Training crops audio to max_duration (DecodeAndCrop), so batches pad to at most that.
        durations = np.minimum(durations, args.crop)
    return durations


def _mates_kept(first: list[int], second: list[int], batch_size: int) -> float:
    """Mean over rows of the share of a row's batch-mates in `first` that share its batch in `second`."""

    def mates(order):
        by_row = {}
        for start in range(0, len(order) - batch_size + 1, batch_size):  # full batches only
            batch = frozenset(order[start : start + batch_size])
            by_row.update(dict.fromkeys(batch, batch))
        return by_row

    before, after = mates(first), mates(second)
    shared = [len(before[row] & after[row]) - 1 for row in before if row in after]
    return float(np.mean(shared)) / (batch_size - 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-utterances", type=int, default=5000)
    parser.add_argument("--median", type=float, default=3.0)
    parser.add_argument("--sigma", type=float, default=0.65)
    parser.add_argument("--min-duration", type=float, default=0.5)
    parser.add_argument("--max-duration", type=float, default=30.0)
    parser.add_argument("--crop", type=float, default=None, help="training max_duration in seconds")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--mega-batch-factor", type=int, default=100)
    parser.add_argument("--length-jitter", type=float, default=0.03, help="DurationGroupedSampler's")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    durations = _durations(args)
    lengths = durations.tolist()
    print(
        f"{len(durations)} durations: median {np.median(durations):.2f} s, mean {durations.mean():.2f} s, "
        f"p99 {np.percentile(durations, 99):.1f} s, max {durations.max():.1f} s, total {durations.sum() / 3600:.1f} h"
    )
    print(f"padded / real samples, mean over {args.epochs} epochs")
    print(f"{'batch':>5}  {'(a) random':>10}  {'(b) HF LengthGrouped':>20}  {'(c) DurationGrouped':>19}")
    rng = np.random.default_rng(args.seed)
    mates_kept = {}
    for batch_size in args.batch_sizes:
        random_ratios, hf_ratios, ours_ratios = [], [], []
        orders = {"random": [], "hf": [], "ours": []}
        ours = DurationGroupedSampler(
            lengths,
            batch_size,
            mega_batch_factor=args.mega_batch_factor,
            length_jitter=args.length_jitter,
            seed=args.seed,
        )
        generator = torch.Generator().manual_seed(args.seed)
        hf = LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)
        for epoch in range(args.epochs):
            ours.set_epoch(epoch)
            orders["random"].append(rng.permutation(len(lengths)).tolist())
            orders["hf"].append(list(hf))
            orders["ours"].append(list(ours))
            random_ratios.append(padding_ratio(lengths, orders["random"][-1], batch_size))
            hf_ratios.append(padding_ratio(lengths, orders["hf"][-1], batch_size))
            ours_ratios.append(padding_ratio(lengths, orders["ours"][-1], batch_size))
        mates_kept[batch_size] = [
            np.mean([_mates_kept(a, b, batch_size) for a, b in zip(runs, runs[1:])])
            for runs in orders.values()
        ]
        print(
            f"{batch_size:>5}  {np.mean(random_ratios):>10.3f}  {np.mean(hf_ratios):>20.3f}  "
            f"{np.mean(ours_ratios):>19.3f}"
        )
    print(f"batch-mates kept from one epoch to the next (length jitter {args.length_jitter:g})")
    print(f"{'batch':>5}  {'(a) random':>10}  {'(b) HF LengthGrouped':>20}  {'(c) DurationGrouped':>19}")
    for batch_size, (random_kept, hf_kept, ours_kept) in mates_kept.items():
        print(f"{batch_size:>5}  {random_kept:>10.3f}  {hf_kept:>20.3f}  {ours_kept:>19.3f}")


if __name__ == "__main__":
    main()
