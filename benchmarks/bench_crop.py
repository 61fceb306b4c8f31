"""What a training crop costs: `DecodeAndCrop(16000, max_duration, random_crop=True)` on one long file.

Writes a `--minutes`-long 44.1 kHz wav, then reads `--crops` random windows of `--max_duration`
seconds and prints the mean time per crop and the peak of memory allocated while reading (numpy
buffers, traced by tracemalloc). The window is chosen from the header and only its frames are read
and resampled, so both stay near what `--max_duration` seconds cost, whatever the file's length.

    python benchmarks/bench_crop.py
    python benchmarks/bench_crop.py --minutes 30 --max_duration 15
"""

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from turbo_hf import DecodeAndCrop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--max_duration", type=float, default=1.0)
    parser.add_argument("--crops", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "long.wav")
        frames = int(args.minutes * 60 * 44100)
        sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(frames), 44100, subtype="PCM_16")
        transform = DecodeAndCrop(16000, max_duration=args.max_duration, random_crop=True)
        torch.manual_seed(0)
        tracemalloc.start()
        started = time.perf_counter()
        for _ in range(args.crops):
            transform({"audio": [path]})
        seconds = (time.perf_counter() - started) / args.crops
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    result = {
        "file_minutes": args.minutes,
        "max_duration_s": args.max_duration,
        "ms_per_crop": round(1000 * seconds, 2),
        "peak_allocated_mib": round(peak / 2**20, 2),
        "whole_file_float32_mib": round(frames * 4 / 2**20, 1),
    }
    print(json.dumps(result, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
