"""Cross-validation runs: which folds to train, where each fold writes (and what an interrupted run
left of it), and the mean ± std summary over folds."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers.utils import logging

from .json_files import write_json
from .metrics import METRICS, confusion_report
from .trainer import TurboTrainingArguments, last_checkpoint

logger = logging.get_logger(__name__)


def select_folds(fold: str | int, num_folds: int, protocol: str) -> list[int]:
    """The folds `--fold` names: one number (a string of ASCII digits, or an int), or "all"."""
    expected = f"--fold must be 0..{num_folds - 1} or 'all' for protocol {protocol!r}"
    if isinstance(fold, bool) or not isinstance(fold, (str, int)):
        raise TypeError(f"{expected}, got {fold!r} ({type(fold).__name__})")
    if fold == "all":
        return list(range(num_folds))
    # str.isdigit() also accepts '²' and '５', which int() then refuses or reads.
    number = int(fold) if isinstance(fold, int) or re.fullmatch(r"[0-9]+", fold) else None
    if number is not None and 0 <= number < num_folds:
        return [number]
    raise ValueError(f"{expected}, got {fold!r}")


def fold_training_args(
    training_args: TurboTrainingArguments, fold: int, many: bool
) -> TurboTrainingArguments:
    """With several folds: each in output_dir/fold_k, and pushed (if asked) to its own `<repo>-fold<k>`."""
    if not many:
        return training_args
    if training_args.resume_from_checkpoint and not training_args.resumes_last:
        raise ValueError(
            "--resume_from_checkpoint names one checkpoint, but --fold all trains several folds; pass "
            "--resume_from_checkpoint last to go on where the run stopped, or resume one fold with --fold N "
            "--output_dir <output_dir>/fold_N"
        )
    repo_id = training_args.push_repo_id
    return dataclasses.replace(
        training_args,
        output_dir=os.path.join(training_args.output_dir, f"fold_{fold}"),
        hub_model_id=f"{repo_id}-fold{fold}",
    )


def resume_fold(
    fold_args: TurboTrainingArguments, fold: int
) -> tuple[TurboTrainingArguments, dict[str, Any] | None]:
    """`--resume_from_checkpoint last` over several folds: the test metrics of a fold that the earlier
    run finished (to reuse), else the fold's arguments, which start afresh if that run never reached it."""
    finished = Path(fold_args.output_dir) / "test_results.json"
    if finished.is_file():
        logger.info("fold %d finished in an earlier run: its %s is reused", fold, finished)
        return fold_args, json.loads(finished.read_text())
    if last_checkpoint(fold_args.output_dir) is None:
        fold_args = dataclasses.replace(fold_args, resume_from_checkpoint=None)
    return fold_args, None


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std}


def _percent(stats: Mapping[str, float]) -> str:
    return f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}"


def summarize_folds(
    fold_metrics: list[dict[str, Any]], output_dir: str | os.PathLike, keys: Sequence[str] = ("wa", "ua")
) -> dict:
    """Mean ± std over folds of each metric; writes summary.json and summary.md in `output_dir`.

    Where the folds' test results hold them, the summary adds the confusion matrix summed over folds
    (in both files, and drawn in confusion_matrix.png beside them when matplotlib is installed) and
    the breakdown by recording method with the transcripts seen verbatim in training (IEMOCAP).
    """
    summary: dict[str, Any] = {"num_folds": len(fold_metrics), "folds": fold_metrics}
    rows = []
    for key in keys:
        values = [m[f"test_{key}"] for m in fold_metrics if f"test_{key}" in m]
        if not values:
            continue
        summary[key] = _mean_std(values)
        rows.append(f"| {METRICS[key].display_name} | {_percent(summary[key])} | {len(values)} |")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sections = ["\n".join(["| metric | mean ± std (%) | folds |", "|---|---|---|", *rows])]
    sections += _summarize_methods(fold_metrics, summary)
    sections += _summarize_confusion(fold_metrics, summary, output_dir)
    write_json(output_dir / "summary.json", summary)
    (output_dir / "summary.md").write_text("\n\n".join(sections) + "\n")
    return summary


def _summarize_methods(fold_metrics: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """WA / UA mean ± std per recording method and the verbatim-transcript counts, if the folds have them."""
    folds = [m for m in fold_metrics if "test_by_method" in m]
    if not folds:
        return []
    methods = list(dict.fromkeys(method for m in folds for method in m["test_by_method"]))
    by_method = {}
    lines = [
        "| test utterances | WA (%) | UA (%) | folds | transcripts seen verbatim in training |",
        "|---|---|---|---|---|",
    ]
    for method in methods:
        parts = [m["test_by_method"][method] for m in folds if method in m["test_by_method"]]
        stats = {key: _mean_std([part[key] for part in parts]) for key in ("wa", "ua")}
        stats["num_examples"] = sum(part["num_examples"] for part in parts)
        stats["transcripts_in_train"] = sum(part["transcripts_in_train"] for part in parts)
        by_method[method] = stats
        seen = f"{stats['transcripts_in_train']} of {stats['num_examples']}"
        share = stats["transcripts_in_train"] / stats["num_examples"]
        lines.append(
            f"| {method} | {_percent(stats['wa'])} | {_percent(stats['ua'])} | {len(parts)} | "
            f"{seen} ({100 * share:.1f}%) |"
        )
    summary["by_method"] = by_method
    notes = []
    counts = [m["test_transcripts_in_train"] for m in folds if "test_transcripts_in_train" in m]
    if counts:
        total = {
            "count": sum(c["count"] for c in counts),
            "num_examples": sum(c["num_examples"] for c in counts),
            "normalization": counts[0]["normalization"],
        }
        summary["transcripts_in_train"] = total
        notes.append(
            f"{total['count']} of {total['num_examples']} test transcripts occur verbatim in their fold's "
            f"training split ({total['normalization']}). A text encoder can score those from memory: "
            "read the scripted row with that in mind (docs/data.md)."
        )
    return ["\n".join(lines), *notes]


def _summarize_confusion(
    fold_metrics: list[dict[str, Any]], summary: dict[str, Any], output_dir: Path
) -> list[str]:
    """The test confusion matrix summed over folds: a markdown table, and confusion_matrix.png."""
    matrices = [m["test_confusion_matrix"] for m in fold_metrics if "test_confusion_matrix" in m]
    if not matrices:
        return []
    names = matrices[0]["class_names"]
    report = confusion_report(np.sum([m["counts"] for m in matrices], axis=0), names)
    summary.update(report)
    counts = np.asarray(report["confusion_matrix"]["counts"])
    lines = [
        f"Test confusion matrix summed over {len(matrices)} folds (rows: true class, columns: predicted; "
        "count and share of the row):",
        "",
        "| true \\ predicted | " + " | ".join(names) + " | recall |",
        "|---" * (len(names) + 2) + "|",
    ]
    for name, row, shares in zip(names, counts, report["confusion_matrix"]["row_normalized"]):
        cells = [
            f"{count}" if share is None else f"{count} ({100 * share:.1f}%)"
            for count, share in zip(row, shares)
        ]
        recall = report["per_class_recall"][name]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {'-' if recall is None else f'{100 * recall:.2f}%'} |"
        )
    recalls = [value for value in report["per_class_recall"].values() if value is not None]
    lines += [
        "",
        f"UA of the summed matrix, the mean of these recalls: {100 * sum(recalls) / len(recalls):.2f}% "
        "(pooled over folds, so not the mean of the folds' UA above).",
    ]
    try:
        from .analysis import plot_confusion_matrix

        plot_confusion_matrix(
            counts, names, output_dir / "confusion_matrix.png", title=f"summed over {len(matrices)} folds"
        )
        lines.append("\n![confusion matrix](confusion_matrix.png)")
    except ImportError as err:
        if not (err.name or "").startswith("matplotlib"):
            raise
        logger.warning(
            "matplotlib is not installed (pip install 'turbo_hf[plots]'): confusion_matrix.png is not "
            "written; summary.md holds the matrix"
        )
    return ["\n".join(lines)]


__all__ = ["fold_training_args", "resume_fold", "select_folds", "summarize_folds"]
