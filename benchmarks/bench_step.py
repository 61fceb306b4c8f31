"""Cost of one Turbo training step against vanilla fine-tuning and against naive Turbo.

Random-initialised encoders of wav2vec2-base and bert-base size, built from their default configs
(nothing is downloaded), dropout 0.2, a 4-class classifier. One training step is
forward + backward + AdamW step (+ zero_grad); the table also shows forward + backward alone, since
the optimizer step costs the same for every variant and dilutes the ratios. Variants:
  vanilla  loss_mode="vanilla": one view, CE only.
  naive    Turbo as in Listing 1 of the paper: both encoders are called twice, once per view (two
           separate calls of N rows each, conv front end included), then the same Turbo loss.
  plain2N  loss_mode="turbo" with the front-end sharing switched off: one call on the doubled
           batch (2N rows through the whole audio encoder). Off by default (--variants).
  turbo    loss_mode="turbo" as implemented: the conv front end runs once on N rows, feature
           projection + transformer + heads on 2N rows, in one call.
each with a trainable and with a frozen (`freeze_feature_encoder()`) conv front end.

All variants of one front-end setting share one model, one batch and one subprocess, and their
timed steps alternate (vanilla, naive, turbo, vanilla, ...), so load from other processes hits all
of them alike. Memory: the bytes of the activations autograd saves for backward (distinct
non-parameter tensors, counted on the first warm-up step) on every device, the peak of
torch.cuda.max_memory_allocated on a GPU, and with --rss on the CPU each configuration's peak RSS
in a fresh process of its own (peak RSS only grows, so it cannot be split within one process).
The trainable run also times the conv front end against the whole audio encoder on N rows.

    python benchmarks/bench_step.py
    python benchmarks/bench_step.py --device cuda --bf16 --batch-size 64
    bash benchmarks/run_gpu.sh bench_logs      # the three GPU runs of docs/performance.md
    python benchmarks/bench_step.py --front-end frozen --variants vanilla turbo --steps 10
"""

import argparse
import contextlib
import datetime
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ("vanilla", "naive", "plain2N", "turbo")
SAMPLING_RATE = 16000
NUM_LABELS = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="audio length of every row")
    parser.add_argument("--tokens", type=int, default=32, help="text length of every row")
    parser.add_argument("--steps", type=int, default=3, help="timed rounds (one step of every variant each)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps of every variant first")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--bf16", action="store_true", help="run forward under torch.autocast(bfloat16)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--front-end", choices=("trainable", "frozen", "both"), default="both")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["vanilla", "naive", "turbo"])
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument(
        "--skip-front-end-share", action="store_true", help="skip timing the conv front end's share"
    )
    parser.add_argument(
        "--rss",
        action="store_true",
        help="CPU: also run every configuration alone in a fresh process (2 steps) for its peak RSS",
    )
    parser.add_argument("--seed", type=int, default=0)
    # Internal: run one configuration and print its result as JSON.
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


# -- worker side -------------------------------------------------------------------------------------
def _setup(args):
    import torch

    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    torch.manual_seed(args.seed)
    from transformers import BertConfig, Wav2Vec2Config
    from transformers.utils import logging as hf_logging

    from turbo_hf import TurboConfig, TurboForAudioTextClassification

    hf_logging.set_verbosity_error()
    config = TurboConfig(
        audio_config=Wav2Vec2Config().to_dict(),  # wav2vec2-base sizes
        text_config=BertConfig().to_dict(),  # bert-base sizes
        num_labels=NUM_LABELS,
        dropout=0.2,
    )
    model = TurboForAudioTextClassification(config).to(args.device).train()
    if args.activation_checkpointing:
        model.activation_checkpointing_enable()
    num_samples = int(args.seconds * SAMPLING_RATE)
    batch = {
        "input_values": torch.randn(args.batch_size, num_samples),
        "audio_attention_mask": torch.ones(args.batch_size, num_samples, dtype=torch.long),
        "input_ids": torch.randint(1000, config.text_config.vocab_size, (args.batch_size, args.tokens)),
        "attention_mask": torch.ones(args.batch_size, args.tokens, dtype=torch.long),
        "labels": torch.arange(args.batch_size) % NUM_LABELS,
    }
    batch["input_ids"][:, 0] = 101  # [CLS]
    return torch, model, {k: v.to(args.device) for k, v in batch.items()}


def _one_call_per_view(method):
    """Wrap get_audio_features / get_text_features so that num_views=V makes V separate calls on N
    rows each (naive Turbo, Listing 1 of the paper) instead of one call on V*N rows."""
    import torch

    signature = inspect.signature(method)

    def encode(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        num_views = bound.arguments.pop("num_views")
        return torch.cat([method(**bound.arguments, num_views=1) for _ in range(num_views)])

    return encode


@contextlib.contextmanager
def _variant(model, variant: str):
    """Switch one model to a variant and back, so that all variants share weights and inputs."""
    from turbo_hf.audio_encoders import AudioEncoderAdapter

    model.config.loss_mode = "vanilla" if variant == "vanilla" else "turbo"
    adapter = model.audio_adapter
    if variant == "naive":
        model.get_audio_features = _one_call_per_view(model.get_audio_features)
        model.get_text_features = _one_call_per_view(model.get_text_features)
    elif variant == "plain2N":
        # The fallback path of encoders without a separate front end: the whole encoder on 2N rows.
        model.audio_adapter = AudioEncoderAdapter(model.audio_model)
    try:
        yield
    finally:
        model.__dict__.pop("get_audio_features", None)
        model.__dict__.pop("get_text_features", None)
        model.audio_adapter = adapter


def _sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def _count_saved_activations(torch, model, counter: dict):
    """Sum the bytes of the distinct non-parameter tensors autograd saves for backward."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield
    counter["activations_mib"] = sum(storages.values()) / 2**20


def _run_steps(args, frozen: bool, variants: list[str]) -> dict:
    """Warm-up steps per variant (the first one also counts saved activations), then `steps` rounds
    that run one timed step of every variant in turn: load from other processes hits all alike."""
    torch, model, batch = _setup(args)
    if frozen:
        model.freeze_feature_encoder()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)
    results = {v: {"step": [], "forward_backward": [], "peak_mib": 0.0} for v in variants}

    def step(variant: str, timed: bool, count_activations: bool = False) -> None:
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        counting = _count_saved_activations(torch, model, results[variant])
        with _variant(model, variant), contextlib.ExitStack() as stack:
            if count_activations:
                stack.enter_context(counting)
            _sync(torch, args.device)
            start = time.perf_counter()
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            _sync(torch, args.device)
            middle = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            _sync(torch, args.device)
            end = time.perf_counter()
        if timed:
            results[variant]["step"].append(end - start)
            results[variant]["forward_backward"].append(middle - start)
        if args.device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**20
            results[variant]["peak_mib"] = max(results[variant]["peak_mib"], peak)

    for variant in variants:
        for index in range(args.warmup):
            step(variant, timed=False, count_activations=index == 0)
    for _ in range(args.steps):
        for variant in variants:
            step(variant, timed=True, count_activations=args.warmup == 0)
    for result in results.values():
        result["step"] = statistics.median(result["step"])
        result["forward_backward"] = statistics.median(result["forward_backward"])
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    share = None if frozen or args.skip_front_end_share else _front_end_share(args, torch, model, batch)
    return {"variants": results, "process_peak_rss_mib": process_peak, "front_end_share": share}


def _front_end_share(args, torch, model, batch) -> dict:
    """Median times of the conv front end alone and of the whole audio encoder on N rows, training
    mode, forward and forward + backward, measured in alternation."""
    audio_model, input_values = model.audio_model, batch["input_values"]
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)
    parts = {
        "front_end": lambda: audio_model.feature_extractor(input_values),
        "encoder": lambda: audio_model(input_values).last_hidden_state,
    }
    times = {f"{name}_{kind}": [] for name in parts for kind in ("forward", "forward_backward")}
    for round_index in range(args.warmup + args.steps):
        for name, function in parts.items():
            for backward in (False, True):
                _sync(torch, args.device)
                start = time.perf_counter()
                with autocast:
                    output = function()
                if backward:
                    output.float().sum().backward()
                _sync(torch, args.device)
                if round_index >= args.warmup:
                    times[f"{name}_{'forward_backward' if backward else 'forward'}"].append(
                        time.perf_counter() - start
                    )
                del output
                audio_model.zero_grad(set_to_none=True)
    return {key: statistics.median(values) for key, values in times.items()}


def _worker(args) -> None:
    job = json.loads(args.worker)
    print("RESULT " + json.dumps(_run_steps(args, job["frozen"], job["variants"])))


# -- driver side -------------------------------------------------------------------------------------
def _spawn(argv: list[str], job: dict) -> dict:
    command = [sys.executable, os.path.abspath(__file__), *argv, "--worker", json.dumps(job)]
    completed = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"worker {job} failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _describe_machine(args) -> str:
    import torch

    threads = args.threads or len(os.sched_getaffinity(0))
    if args.device == "cuda":
        device = torch.cuda.get_device_name()
    else:
        device = f"CPU ({os.cpu_count()} cores, {threads} torch threads, {platform.processor() or platform.machine()})"
    return f"{device}; torch {torch.__version__}; Python {platform.python_version()}"


def _print_share(share: dict, batch_size: int) -> None:
    forward = share["front_end_forward"] / share["encoder_forward"]
    both = share["front_end_forward_backward"] / share["encoder_forward_backward"]
    print(
        f"conv front end share of the audio encoder's time (training mode, {batch_size} rows, trainable): "
        f"forward {share['front_end_forward']:.3f} of {share['encoder_forward']:.3f} s = {forward:.0%}; "
        f"forward + backward {share['front_end_forward_backward']:.3f} of "
        f"{share['encoder_forward_backward']:.3f} s = {both:.0%}"
    )


def main() -> None:
    args = _parser().parse_args()
    if args.worker is not None:
        _worker(args)
        return
    argv = sys.argv[1:]
    frozen_settings = {"trainable": [False], "frozen": [True], "both": [False, True]}[args.front_end]
    started = time.perf_counter()
    print(
        f"bench_step {datetime.datetime.now().isoformat(timespec='seconds')}  {_describe_machine(args)}\n"
        f"wav2vec2-base + bert-base (random init), dropout 0.2, batch {args.batch_size}, "
        f"{args.seconds:g} s audio, {args.tokens} tokens, {'bf16 autocast' if args.bf16 else 'fp32'}"
        f"{', activation checkpointing' if args.activation_checkpointing else ''}; "
        f"{args.warmup} warm-up step(s) per variant, then median of {args.steps} rounds of one step per variant\n"
        "step = forward + backward + AdamW step + zero_grad; fwd+bwd = forward + backward; "
        "activations = distinct non-parameter tensors saved for backward"
    )
    memory_column = {"cuda": "peak alloc MiB", "cpu": "peak RSS MiB" if args.rss else None}[args.device]
    header = (
        f"{'front end':<9}  {'variant':<8}  {'step s':>7}  {'/vanilla':>8}  {'fwd+bwd s':>9}  {'/vanilla':>8}  "
        f"{'samples/s':>9}  {'activations MiB':>15}" + (f"  {memory_column:>14}" if memory_column else "")
    )
    print(header)
    print("-" * len(header))
    share = None
    for frozen in frozen_settings:
        setting = "frozen" if frozen else "trainable"
        result = _spawn(argv, {"frozen": frozen, "variants": args.variants})
        share = share or result["front_end_share"]
        measured = result["variants"]
        baseline = measured.get("vanilla")
        for variant in args.variants:
            row = measured[variant]
            if args.device == "cpu" and args.rss:
                # Peak RSS only grows within a process: one fresh process per variant, two steps.
                alone = _spawn(
                    [*argv, "--warmup", "1", "--steps", "1", "--skip-front-end-share"],
                    {"frozen": frozen, "variants": [variant]},
                )
                row["peak_mib"] = alone["process_peak_rss_mib"]

            def ratio(key, row=row, baseline=baseline):
                return f"{row[key] / baseline[key]:8.2f}" if baseline else f"{'-':>8}"

            print(
                f"{setting:<9}  {variant:<8}  {row['step']:7.3f}  {ratio('step')}  "
                f"{row['forward_backward']:9.3f}  {ratio('forward_backward')}  "
                f"{args.batch_size / row['step']:9.2f}  {row.get('activations_mib', float('nan')):15.0f}"
                + (f"  {row['peak_mib']:14.0f}" if memory_column else ""),
                flush=True,
            )
        if args.device == "cpu":
            print(
                f"{'':<9}  process peak RSS of the {setting} run (all variants): "
                f"{result['process_peak_rss_mib']:.0f} MiB"
            )
    if share is not None:
        _print_share(share, args.batch_size)
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
