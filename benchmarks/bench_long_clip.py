"""What a long clip costs the pipeline: the default `max_duration` (a 30 s centre crop) against whole clips.

Saves a tiny random Turbo classifier, writes a `--minutes`-long 44.1 kHz wav, and classifies it with
`max_duration` at its default and with `max_duration=None`, printing the seconds and the peak of
memory allocated by numpy and the tokenizer (tracemalloc; torch's own allocations are not traced) for
each, and their ratio. The crop is read before resampling (`load_window`) and attention over a
30 s window is what every call then costs, whatever the file's length.

    python benchmarks/bench_long_clip.py
    python benchmarks/bench_long_clip.py --minutes 5
"""

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf
from transformers import pipeline

import turbo_hf  # noqa: F401  (registers the task)
from turbo_hf import TurboForAudioTextClassification, TurboProcessor
from turbo_hf.pipeline import TASK
from turbo_hf.pipeline_options import DEFAULT_MAX_DURATION
from turbo_hf.testing.tiny_encoders import save_tiny_audio_encoder, save_tiny_text_encoder


def _classify(classifier, path: str, **options) -> tuple[float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    classifier({"audio": path, "text": "turn the lights on"}, **options)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        audio, text = save_tiny_audio_encoder(folder / "audio"), save_tiny_text_encoder(folder / "text")
        model = TurboForAudioTextClassification.from_encoders_pretrained(str(audio), str(text), num_labels=2)
        processor = TurboProcessor.from_encoders_pretrained(str(audio), str(text))
        model.save_pretrained(folder / "model")
        processor.save_pretrained(folder / "model")
        classifier = pipeline(TASK, model=str(folder / "model"), device="cpu")
        path = str(folder / "long.wav")
        frames = int(args.minutes * 60 * 44100)
        sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(frames), 44100, subtype="PCM_16")
        _classify(classifier, path, max_duration=1.0)  # warm-up
        cropped = _classify(classifier, path)
        whole = _classify(classifier, path, max_duration=None)
    result = {
        "clip_minutes": args.minutes,
        "default_max_duration_s": DEFAULT_MAX_DURATION,
        "cropped_s": round(cropped[0], 3),
        "whole_s": round(whole[0], 3),
        "whole_over_cropped_time": round(whole[0] / cropped[0], 1),
        "cropped_peak_traced_mib": round(cropped[1], 1),
        "whole_peak_traced_mib": round(whole[1], 1),
    }
    print(json.dumps(result, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
