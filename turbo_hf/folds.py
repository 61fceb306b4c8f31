"""Cross-validation runs: which folds to train, where each fold writes (and what an interrupted run
left of it), and the mean ± std summary over folds."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .metrics import METRICS
from .trainer import TurboTrainingArguments, last_checkpoint

logger = logging.get_logger(__name__)


def select_folds(fold: str, num_folds: int, protocol: str) -> list[int]:
    """The folds `--fold` names: one number, or "all"."""
    if fold == "all":
        return list(range(num_folds))
    if fold.isdigit() and int(fold) < num_folds:
        return [int(fold)]
    raise ValueError(f"--fold must be 0..{num_folds - 1} or 'all' for protocol {protocol!r}")


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
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
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


def summarize_folds(
    fold_metrics: list[dict[str, float]], output_dir: str | os.PathLike, keys: Sequence[str] = ("wa", "ua")
) -> dict:
    """Mean ± std over folds of each metric; writes summary.json and summary.md in `output_dir`."""
    summary: dict[str, Any] = {"num_folds": len(fold_metrics), "folds": fold_metrics}
    rows = []
    for key in keys:
        values = [m[f"test_{key}"] for m in fold_metrics if f"test_{key}" in m]
        if not values:
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        summary[key] = {"mean": mean, "std": std}
        rows.append(f"| {METRICS[key].display_name} | {100 * mean:.2f} ± {100 * std:.2f} | {len(values)} |")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    table = ["| metric | mean ± std (%) | folds |", "|---|---|---|", *rows]
    (output_dir / "summary.md").write_text("\n".join(table) + "\n")
    return summary


__all__ = ["fold_training_args", "resume_fold", "select_folds", "summarize_folds"]
