"""Time `load_manifest` on a CSV manifest of --rows distinct short wav files (default 10,000).

The files and the manifest are written to a temporary folder first (not timed); then the median
of --repeats loads is printed as rows, seconds and rows/s. Each load parses the CSV, checks every
path and reads every file's header for `duration`. Target: under 5 s for 10,000 rows on 2 cores.

    python benchmarks/bench_manifest.py
    python benchmarks/bench_manifest.py --rows 2000 --num-proc 4
"""

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from turbo_hf.data.manifest import load_manifest


def _write_corpus(folder: Path, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    (folder / "wav").mkdir()
    path = folder / "manifest.csv"
    splits = ["train"] * 8 + ["validation", "test"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "audio", "text", "label", "split"])
        for i in range(rows):
            samples = int(rng.integers(1600, 4800))  # 0.1-0.3 s: the header read, not the size, is timed
            sf.write(
                folder / "wav" / f"{i:05d}.wav",
                (0.1 * rng.standard_normal(samples)).astype(np.float32),
                16000,
            )
            writer.writerow(
                [f"utt{i:05d}", f"wav/{i:05d}.wav", f"utterance number {i}", i % 2, splits[i % 10]]
            )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-proc", type=int, default=None, help="threads for header reads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = _write_corpus(Path(folder), args.rows, args.seed)
        print(f"wrote {args.rows} wav files and {path.name} in {time.perf_counter() - started:.1f} s")
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            splits = load_manifest(path, num_proc=args.num_proc)
            seconds.append(time.perf_counter() - started)
        rows = sum(len(split) for split in splits.values())
        median = statistics.median(seconds)
        print(
            f"load_manifest: {rows} rows, {median:.2f} s (median of {args.repeats}), {rows / median:,.0f} rows/s"
        )
        print("splits: " + ", ".join(f"{name} {len(split)}" for name, split in splits.items()))


if __name__ == "__main__":
    main()
