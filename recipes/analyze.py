"""Alignment / uniformity of trained models, with the paper's Fig. 2 and Fig. 3 style plots.

    python recipes/analyze.py runs/vanilla runs/cross runs/turbo \
        --iemocap_root IEMOCAP_full_release --protocol speaker --fold 0 --output_dir analysis/
    python recipes/analyze.py runs/dsd_* --manifest dsd.csv --split test --output_dir analysis/

Each MODEL_DIR is a saved TurboForAudioTextClassification (+ processor). The projected embeddings
of pass 1 (eval mode) of the chosen split are L2-normalised; alignment is measured between
paired audio and text rows, uniformity within the audio and within the text embeddings.
Writes analysis.json, align_uniform.png (one point per model) and audio_kde.png (one column per
model). A model's method is read from its config (loss_mode) and its seed from the folder name
(`turbo_seed2`) when there is one, so several seeds of one method share a marker.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np
import torch

import turbo_hf  # noqa: F401  (registers the Auto classes)
from turbo_hf import DataCollatorForAudioText, TurboForAudioTextClassification, TurboProcessor
from turbo_hf.analysis import (
    alignment,
    embed,
    plot_align_uniform,
    plot_embedding_kde,
    save_analysis_json,
    uniformity,
)

logger = logging.getLogger("analyze")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dirs", nargs="+", help="saved model folders")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--iemocap_root", help="IEMOCAP release (or a synthetic corpus in its layout)")
    data.add_argument("--manifest", help="CSV / TSV / JSONL manifest")
    parser.add_argument("--protocol", default="speaker", help="IEMOCAP fold protocol: speaker | session")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--split", default="test", help="split to embed (train / validation / test)")
    parser.add_argument("--max_samples", type=int, default=None, help="embed at most this many rows")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output_dir", default="analysis")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    return parser.parse_args(argv)


def load_split(args: argparse.Namespace):
    if args.iemocap_root:
        from turbo_hf import load_iemocap

        splits = load_iemocap(args.iemocap_root, protocol=args.protocol, fold=args.fold)
    else:
        from turbo_hf import load_manifest

        splits = load_manifest(args.manifest)
        if not hasattr(splits, "keys"):
            return splits
    if args.split not in splits:
        raise SystemExit(f"no split {args.split!r}; the data has {sorted(splits)}")
    return splits[args.split]


def run_name(model_dir: Path) -> tuple[str, int | None]:
    """(method, seed) of a run: loss_mode from its config, the seed from a folder name like `turbo_seed2`."""
    config = json.loads((model_dir / "config.json").read_text())
    match = re.search(r"seed[_-]?(\d+)", model_dir.name)
    return config.get("loss_mode", model_dir.name), int(match.group(1)) if match else None


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    split = load_split(args)
    if args.max_samples is not None:
        split = split.select(range(min(args.max_samples, len(split))))
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    results, points, audio_by_model, labels_by_model = [], [], {}, {}
    for model_dir in map(Path, args.model_dirs):
        model = TurboForAudioTextClassification.from_pretrained(model_dir)
        processor = TurboProcessor.from_pretrained(model_dir)
        model.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        embeddings = embed(
            model,
            split,
            DataCollatorForAudioText(processor, num_labels=model.config.num_labels),
            batch_size=args.batch_size,
        )
        method, seed = run_name(model_dir)
        numbers = {
            "model": str(model_dir),
            "method": method,
            "seed": seed,
            "num_examples": len(split),
            "alignment": alignment(embeddings["audio"], embeddings["text"]),
            "uniformity_audio": uniformity(embeddings["audio"]),
            "uniformity_text": uniformity(embeddings["text"]),
        }
        numbers["uniformity"] = (numbers["uniformity_audio"] + numbers["uniformity_text"]) / 2
        logger.info(
            "%s: alignment %.4f, uniformity audio %.4f / text %.4f",
            model_dir,
            numbers["alignment"],
            numbers["uniformity_audio"],
            numbers["uniformity_text"],
        )
        results.append(numbers)
        points.append({"name": method, "seed": seed, **numbers})
        key = method if seed is None else f"{method} (seed {seed})"
        audio_by_model[key] = embeddings["audio"]
        if embeddings["labels"] is not None:  # class names in the figure's legend
            labels_by_model[key] = np.asarray(split.features["label"].names)[embeddings["labels"]]

    save_analysis_json({"split": args.split, "models": results}, output_dir / "analysis.json")
    plot_align_uniform(
        points, output_dir / "align_uniform.png", title=f"{args.split} split: lower left is better"
    )
    first_seed = {}
    for key, value in audio_by_model.items():  # one column per method keeps Fig. 3 readable
        first_seed.setdefault(key.split(" (seed")[0], (key, value))
    plot_embedding_kde(
        {method: value for method, (_, value) in first_seed.items()},
        output_dir / "audio_kde.png",
        labels_by_model={method: labels_by_model.get(key) for method, (key, _) in first_seed.items()},
    )
    logger.info("wrote analysis.json, align_uniform.png and audio_kde.png to %s", output_dir)
    return {"models": results}


if __name__ == "__main__":
    main()
