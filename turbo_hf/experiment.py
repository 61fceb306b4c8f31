"""What the recipes share: building model + processor, one train/evaluate run, the IEMOCAP folds
and the manifest run, and the summary of a cross-validation. The scripts in recipes/ parse their
arguments (`turbo_hf.arguments`) and call these."""

from __future__ import annotations

import dataclasses
import json
import logging as py_logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import datasets as hf_datasets
import numpy as np
import transformers
from datasets import DatasetDict
from transformers import EarlyStoppingCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging

from .arguments import DataArguments, IemocapArguments, ManifestArguments, ModelArguments
from .collator import DataCollatorForAudioText
from .metrics import compute_metrics
from .modeling_turbo import TurboForAudioTextClassification
from .processing_turbo import TurboProcessor
from .trainer import TurboTrainer, TurboTrainingArguments

logger = logging.get_logger(__name__)


# `--resume_from_checkpoint last` (or `true`): the newest checkpoint-* folder of output_dir.
RESUME_LAST = frozenset({"last", "true"})


def _resumes_last(training_args: TurboTrainingArguments) -> bool:
    value = training_args.resume_from_checkpoint
    # A yaml / json config gives `true` as a bool; the command line gives the string.
    return value is True or (isinstance(value, str) and value.lower() in RESUME_LAST)


def _last_checkpoint(output_dir: str) -> str | None:
    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def _checkpoint_to_resume(training_args: TurboTrainingArguments) -> str | None:
    """The checkpoint `trainer.train` resumes from, or None; warns about checkpoints left unused."""
    output_dir = training_args.output_dir
    last = _last_checkpoint(output_dir)
    if _resumes_last(training_args):
        if last is None:
            raise ValueError(
                f"--resume_from_checkpoint {training_args.resume_from_checkpoint}: no checkpoint-* "
                f"folder in {output_dir}"
            )
        logger.info("Resuming from %s", last)
        return last
    if training_args.resume_from_checkpoint is None and last is not None:
        logger.warning(
            "%s already holds checkpoints (newest: %s) from an earlier run; this run starts afresh beside them. "
            "Pass --resume_from_checkpoint last to continue that run instead, or pick another --output_dir.",
            output_dir,
            os.path.basename(last),
        )
    return training_args.resume_from_checkpoint


def build_model_and_processor(
    model_args: ModelArguments, label_names: list[str]
) -> tuple[TurboForAudioTextClassification, TurboProcessor]:
    """Pretrained encoders + fresh Turbo heads for `label_names`, and the matching processor."""
    hub = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}
    hub = {k: v for k, v in hub.items() if v is not None}
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        model_args.audio_model_name_or_path,
        model_args.text_model_name_or_path,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
        **{f"audio_{k}": v for k, v in hub.items()},
        **{f"text_{k}": v for k, v in hub.items()},
        **model_args.turbo_config_kwargs(),
    )
    if model_args.freeze_feature_encoder:
        model.freeze_feature_encoder()
    processor = TurboProcessor.from_encoders_pretrained(
        model_args.audio_model_name_or_path,
        model_args.text_model_name_or_path,
        audio_window=model.config.audio_window,
        **hub,
    )
    return model, processor


def _truncate(datasets: DatasetDict, data_args: DataArguments) -> DatasetDict:
    limits = {"train": data_args.max_train_samples}
    limits.update({name: data_args.max_eval_samples for name in datasets if name != "train"})
    return DatasetDict(
        {
            name: split.select(range(min(len(split), limits[name]))) if limits.get(name) else split
            for name, split in datasets.items()
        }
    )


def train_and_evaluate(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TurboTrainingArguments,
    datasets: DatasetDict,
) -> dict[str, float]:
    """Train on `train`, pick the best checkpoint on `validation`, report on `test`.

    Saves the model and processor in `training_args.output_dir` and returns the test metrics
    (keys prefixed `test_`).
    """
    missing = {"train", "validation", "test"} - set(datasets)
    if missing:
        raise ValueError(f"datasets needs train, validation and test splits; missing {sorted(missing)}")
    set_seed(training_args.seed)
    datasets = _truncate(datasets, data_args)
    label_names = datasets["train"].features["label"].names
    _warn_about_classes_without_training_rows(datasets["train"], label_names)
    model, processor = build_model_and_processor(model_args, label_names)
    if data_args.max_text_length is not None:
        # Saved with the processor: the pipeline and the CLI then truncate transcripts as training did.
        processor.tokenizer.model_max_length = data_args.max_text_length
    collator_kwargs = dict(
        processor=processor,
        max_duration=data_args.max_duration,
        eval_max_duration=data_args.eval_max_duration,
        max_text_length=data_args.max_text_length,
        min_samples=model.receptive_field_samples,
    )
    # The Trainer would push every checkpoint with its own generic card; we push once, at the end,
    # with a card that states the method and the test results.
    push_to_hub = training_args.push_to_hub
    trainer = TurboTrainer(
        model=model,
        args=dataclasses.replace(training_args, push_to_hub=False),
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"],
        data_collator=DataCollatorForAudioText(training=True, **collator_kwargs),
        eval_data_collator=DataCollatorForAudioText(training=False, **collator_kwargs),
        processing_class=processor,
        compute_metrics=compute_metrics,
    )

    train_result = trainer.train(resume_from_checkpoint=_checkpoint_to_resume(training_args))
    # Early stopping watches validation only; the final evaluations below must not feed it.
    trainer.remove_callback(EarlyStoppingCallback)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    metrics = trainer.evaluate(datasets["validation"], metric_key_prefix="eval")
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    test_metrics = trainer.evaluate(datasets["test"], metric_key_prefix="test")
    trainer.log_metrics("test", test_metrics)
    trainer.save_metrics("test", test_metrics)
    if push_to_hub and trainer.is_world_process_zero():
        from .hub import push_to_hub as push_model

        repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
        push_model(
            trainer.model, processor, repo_id, eval_results=test_metrics, token=training_args.hub_token
        )
    return test_metrics


def _warn_about_classes_without_training_rows(train: hf_datasets.Dataset, label_names: list[str]) -> None:
    counts = np.bincount(np.asarray(train["label"], dtype=np.int64), minlength=len(label_names))
    empty = [name for name, count in zip(label_names, counts) if count == 0]
    if empty:
        logger.warning(
            "class(es) %s have no training rows: the model cannot learn them (a typo in a label, or a "
            "split without them?)",
            empty,
        )


def setup_logging(training_args: TurboTrainingArguments) -> None:
    """One logging set-up for every recipe: the main process at the Trainer's log level."""
    py_logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[py_logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    for library_logging in (logging, hf_datasets.utils.logging):
        library_logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    py_logging.getLogger("turbo_hf").setLevel(level)


def _fold_output_dir(training_args: TurboTrainingArguments, fold: int, many: bool) -> TurboTrainingArguments:
    """With several folds: each in output_dir/fold_k, and pushed (if asked) to its own `<repo>-fold<k>`."""
    if not many:
        return training_args
    if training_args.resume_from_checkpoint and not _resumes_last(training_args):
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


def run_iemocap(
    model_args: ModelArguments,
    data_args: DataArguments,
    iemocap_args: IemocapArguments,
    training_args: TurboTrainingArguments,
) -> dict[str, Any]:
    """One IEMOCAP fold, or with `fold="all"` every fold in turn followed by summary.json / summary.md."""
    from .data.iemocap import IEMOCAP_NUM_FOLDS, load_iemocap

    if iemocap_args.iemocap_root is None:
        raise ValueError(
            "--iemocap_root is required: the folder holding Session1..Session5 of the IEMOCAP release"
        )
    if iemocap_args.protocol not in IEMOCAP_NUM_FOLDS:
        raise ValueError(
            f"--protocol must be one of {sorted(IEMOCAP_NUM_FOLDS)}, got {iemocap_args.protocol!r}"
        )
    num_folds = IEMOCAP_NUM_FOLDS[iemocap_args.protocol]
    if iemocap_args.fold == "all":
        folds = list(range(num_folds))
    elif iemocap_args.fold.isdigit() and int(iemocap_args.fold) < num_folds:
        folds = [int(iemocap_args.fold)]
    else:
        raise ValueError(f"--fold must be 0..{num_folds - 1} or 'all' for protocol {iemocap_args.protocol!r}")

    fold_metrics = []
    for fold in folds:
        logger.info("IEMOCAP %s protocol, fold %d of %d", iemocap_args.protocol, fold, num_folds)
        fold_args = _fold_output_dir(training_args, fold, many=len(folds) > 1)
        finished = Path(fold_args.output_dir) / "test_results.json"
        if len(folds) > 1 and _resumes_last(training_args):
            if finished.is_file():
                logger.info("fold %d finished in an earlier run: its %s is reused", fold, finished)
                fold_metrics.append({"fold": fold, **json.loads(finished.read_text())})
                continue
            if _last_checkpoint(fold_args.output_dir) is None:
                # Folds the stopped run never reached start from scratch.
                fold_args = dataclasses.replace(fold_args, resume_from_checkpoint=None)
        splits = load_iemocap(
            iemocap_args.iemocap_root,
            protocol=iemocap_args.protocol,
            fold=fold,
            validation_fraction=iemocap_args.validation_fraction,
            seed=training_args.seed,
            on_missing=iemocap_args.on_missing,
        )
        metrics = train_and_evaluate(model_args, data_args, fold_args, splits)
        fold_metrics.append({"fold": fold, **metrics})
    if len(folds) == 1:
        return fold_metrics[0]
    return summarize_folds(fold_metrics, training_args.output_dir)


def run_manifest(
    model_args: ModelArguments,
    data_args: DataArguments,
    manifest_args: ManifestArguments,
    training_args: TurboTrainingArguments,
) -> dict[str, float]:
    """Train / validate / test on the splits of one manifest (device-directed speech and others)."""
    from .data.manifest import load_manifest

    if manifest_args.manifest is None:
        raise ValueError(
            "--manifest is required: a CSV, TSV or JSONL file with audio, text, label and split columns"
        )
    labels = [name.strip() for name in manifest_args.labels.split(",")] if manifest_args.labels else None
    splits = load_manifest(
        manifest_args.manifest,
        audio_column=manifest_args.audio_column,
        text_column=manifest_args.text_column,
        label_column=manifest_args.label_column,
        labels=labels,
        split_column=manifest_args.split_column,
        id_column=manifest_args.id_column,
        on_bad_row=manifest_args.on_bad_row,
    )
    if not isinstance(splits, DatasetDict):
        raise ValueError(
            f"{manifest_args.manifest}: no {manifest_args.split_column!r} column; training needs rows marked "
            "train, validation and test"
        )
    unknown = sorted(set(splits) - {"train", "validation", "test"})
    if unknown:
        # Rows of any other split would be loaded and then never used.
        raise ValueError(
            f"{manifest_args.manifest}: split value(s) {unknown} in column {manifest_args.split_column!r}; "
            "expected train, validation (or dev / valid / val) and test"
        )
    splits = _with_validation_split(splits, manifest_args, training_args.seed)
    _check_binary_metric(training_args, splits, manifest_args.manifest)
    return train_and_evaluate(model_args, data_args, training_args, splits)


def _with_validation_split(splits: DatasetDict, manifest_args: ManifestArguments, seed: int) -> DatasetDict:
    """Carve a stratified validation split out of train when the manifest has none and the user asks."""
    fraction = manifest_args.validation_fraction
    if "validation" in splits:
        if fraction is not None:
            raise ValueError(
                f"{manifest_args.manifest} has validation rows; --validation_fraction only applies to a manifest "
                "without them"
            )
        return splits
    if fraction is None:
        raise ValueError(
            f"{manifest_args.manifest} has no validation rows (splits: {sorted(splits)}); mark some rows "
            "'validation', or pass --validation_fraction 0.1 to hold out part of train"
        )
    if not 0 < fraction < 1:
        raise ValueError(f"--validation_fraction must be in (0, 1), got {fraction}")
    held_out = splits["train"].train_test_split(test_size=fraction, stratify_by_column="label", seed=seed)
    logger.info(
        "validation: %d of the %d training rows (%.0f%%, stratified by label, seed %d)",
        len(held_out["test"]),
        len(splits["train"]),
        100 * fraction,
        seed,
    )
    return DatasetDict({**splits, "train": held_out["train"], "validation": held_out["test"]})


def _check_binary_metric(training_args: TurboTrainingArguments, splits: DatasetDict, source: str) -> None:
    """EER and ACC model selection only exist for two classes: say so before training starts."""
    metric = (training_args.metric_for_best_model or "").removeprefix("eval_")
    names = splits["train"].features["label"].names
    if metric in ("eer", "acc") and len(names) != 2:
        raise ValueError(
            f"--metric_for_best_model {metric} needs a binary task, but {source} has {len(names)} classes "
            f"{names}; pass --metric_for_best_model ua"
        )


def summarize_folds(
    fold_metrics: list[dict[str, float]], output_dir: str | os.PathLike, keys=("wa", "ua")
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
        rows.append(f"| {key.upper()} | {100 * mean:.2f} ± {100 * std:.2f} | {len(values)} |")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    table = ["| metric | mean ± std (%) | folds |", "|---|---|---|", *rows]
    (output_dir / "summary.md").write_text("\n".join(table) + "\n")
    return summary


__all__ = [
    "build_model_and_processor",
    "train_and_evaluate",
    "summarize_folds",
    "setup_logging",
    "run_iemocap",
    "run_manifest",
]
