"""Several gloo processes on one machine, and a count of the collectives and host reads of a block.

`spawn_gloo(worker, world_size, *args)` runs `worker(rank, world_size, *args)` in `world_size`
processes joined in one gloo process group, as `torchrun --nproc_per_node` would on a CPU.
`count_collectives()` wraps the `torch.distributed` collectives and the `torch.Tensor` methods that
read a value back to the host (`.item()`, `.tolist()`, `int(t)`, `bool(t)` ...: a device sync on an
accelerator) for the duration of a `with` block, and counts the calls. `measure_turbo_step` counts
them in one training step of a tiny Turbo model (the two-process test and
`benchmarks/bench_collectives.py` both use it).
"""

from __future__ import annotations

import functools
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

COLLECTIVES = (
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "all_to_all",
    "all_to_all_single",
    "barrier",
    "broadcast",
    "gather",
    "reduce",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "scatter",
)
HOST_READS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")


@dataclass
class CollectiveCounts:
    """Calls counted by `count_collectives`, by function name."""

    collectives: Counter = field(default_factory=Counter)
    host_reads: Counter = field(default_factory=Counter)

    @property
    def num_collectives(self) -> int:
        return sum(self.collectives.values())

    @property
    def num_host_reads(self) -> int:
        return sum(self.host_reads.values())


@contextmanager
def count_collectives() -> Iterator[CollectiveCounts]:
    """Count `torch.distributed` collectives and tensor reads to the host inside the block.

    A call made from inside a counted call (a collective's own bookkeeping) is not counted again.
    """
    counts = CollectiveCounts()
    depth = [0]

    def counting(original: Callable, counter: Counter, name: str) -> Callable:
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if depth[0] == 0:
                counter[name] += 1
            depth[0] += 1
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1

        return wrapper

    patched = [(dist, name) for name in COLLECTIVES if hasattr(dist, name)]
    patched += [(torch.Tensor, name) for name in HOST_READS]
    # (owner, name, the attribute defined on owner itself, or None where owner inherits it)
    originals = [(owner, name, vars(owner).get(name)) for owner, name in patched]
    for owner, name, _ in originals:
        counter = counts.collectives if owner is dist else counts.host_reads
        setattr(owner, name, counting(getattr(owner, name), counter, name))
    try:
        yield counts
    finally:
        for owner, name, original in originals:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join_group_and_run(rank: int, worker: Callable, world_size: int, port: int, args: tuple) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        worker(rank, world_size, *args)
        # Leave together: rank 0 holds the group's store, and a peer still tearing down without it aborts.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def spawn_gloo(worker: Callable[..., None], world_size: int, *args: Any) -> None:
    """Run `worker(rank, world_size, *args)` in `world_size` fresh processes of one gloo group.

    `worker` must be importable by name (a module-level function); an exception in any process is
    raised here.
    """
    mp.spawn(_join_group_and_run, args=(worker, world_size, free_port(), args), nprocs=world_size, join=True)


def measure_turbo_step(rows: int, **config_kwargs: Any) -> dict[str, CollectiveCounts]:
    """Collectives and host reads of one training step (forward, then backward) of a tiny Turbo model
    on `rows` rows of this process, in an initialised process group. Returns {"forward", "backward"}."""
    from .. import TurboConfig, TurboForAudioTextClassification, TurboProcessor
    from .tiny_encoders import tiny_audio_config, tiny_feature_extractor, tiny_text_config, tiny_tokenizer

    tokenizer = tiny_tokenizer("bert", words=["hello", "world"])
    config_kwargs = {"num_labels": 3, "projection_dim": 16, **config_kwargs}
    config = TurboConfig(
        audio_config=tiny_audio_config("wav2vec2", mask_time_prob=0.0),
        text_config=tiny_text_config("bert", vocab_size=len(tokenizer)),
        **config_kwargs,
    )
    processor = TurboProcessor(feature_extractor=tiny_feature_extractor(), tokenizer=tokenizer)
    torch.manual_seed(0)
    model = TurboForAudioTextClassification(config).train()
    waveforms = [torch.randn(16000 - 1600 * row).numpy() for row in range(rows)]
    texts = ["hello world", "hello"] * rows
    batch = dict(processor(audio=waveforms, text=texts[:rows], sampling_rate=16000, return_tensors="pt"))
    batch["labels"] = torch.arange(rows) % config.num_labels
    with count_collectives() as forward:
        loss = model(**batch).loss
    with count_collectives() as backward:
        loss.backward()
    return {"forward": forward, "backward": backward}


__all__ = [
    "COLLECTIVES",
    "HOST_READS",
    "CollectiveCounts",
    "count_collectives",
    "free_port",
    "measure_turbo_step",
    "spawn_gloo",
]
