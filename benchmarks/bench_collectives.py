"""Collectives and host reads per training step with two processes (gloo, on the CPU).

Two processes hold uneven batches (3 and 2 rows, as at the end of an epoch) of a tiny Turbo model;
each counts the `torch.distributed` collectives and the tensor reads back to the host (`.item()`,
`.tolist()`, `int(t)` ...: each a device sync on an accelerator) of one forward and one backward,
per loss mode. Counts do not depend on the model's size, only on how the losses gather. The
backward of a gather is one all_to_all, which gloo runs as one `scatter` per process. Two host reads
of every mode (vanilla included) are the encoders' own: a CPU-only input check of the audio adapter
and transformers' SDPA mask.

    python benchmarks/bench_collectives.py
"""

import argparse
import json
import os
import tempfile

from turbo_hf.testing.distributed import measure_turbo_step, spawn_gloo

SETTINGS = {
    "turbo": {"loss_mode": "turbo"},
    "turbo, duplicate_negatives=mask": {"loss_mode": "turbo", "duplicate_negatives": "mask"},
    "in_modal": {"loss_mode": "in_modal"},
    "cross": {"loss_mode": "cross"},
    "vanilla": {"loss_mode": "vanilla"},
}
ROWS = (3, 2)  # rows of process 0 and 1


def _worker(rank: int, world_size: int, folder: str) -> None:
    import torch

    torch.set_num_threads(1)
    results = {}
    for name, config in SETTINGS.items():
        counts = measure_turbo_step(ROWS[rank], **config)
        results[name] = {
            phase: {
                "collectives": dict(count.collectives),
                "host_reads": dict(count.host_reads),
            }
            for phase, count in counts.items()
        }
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as handle:
        json.dump(results, handle)


def _total(counter: dict) -> int:
    return sum(counter.values())


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spawn_gloo(_worker, len(ROWS), folder)
        with open(os.path.join(folder, "rank0.json")) as handle:
            results = json.load(handle)
    print(f"Per training step, process 0 of 2 (rows {ROWS[0]} and {ROWS[1]}):")
    print("| loss mode | collectives (forward + backward) | host reads | what |")
    print("|---|---|---|---|")
    for name, phases in results.items():
        forward, backward = phases["forward"], phases["backward"]
        collectives = _total(forward["collectives"]) + _total(backward["collectives"])
        reads = _total(forward["host_reads"]) + _total(backward["host_reads"])
        detail = {
            **forward["collectives"],
            **{f"backward {k}": v for k, v in backward["collectives"].items()},
        }
        what = ", ".join(f"{key} x{value}" for key, value in detail.items()) or "-"
        print(
            f"| {name} | {collectives} ({_total(forward['collectives'])} + {_total(backward['collectives'])}) "
            f"| {reads} | {what} |"
        )


if __name__ == "__main__":
    main()
