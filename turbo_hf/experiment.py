"""What the recipes run: building model + processor, one train/evaluate run, the IEMOCAP run (one
fold or a cross-validation, see `folds.py`) and the manifest run. The scripts in recipes/ parse their
arguments (`turbo_hf.arguments`) and call these."""

from __future__ import annotations

import dataclasses
import logging as py_logging
import sys
from collections.abc import Callable
from typing import Any

import datasets as hf_datasets
import numpy as np
import transformers
from datasets import DatasetDict
from transformers import EarlyStoppingCallback, set_seed
from transformers.utils import logging

from .arguments import DataArguments, IemocapArguments, ManifestArguments, ModelArguments
from .collator import DataCollatorForAudioText, DecodeAndCrop, check_audio_column
from .data.splits import with_validation_split
from .folds import fold_training_args, resume_fold, select_folds, summarize_folds
from .losses import balanced_class_weights
from .metrics import (
    METRICS,
    compute_metrics,
    confusion_matrix,
    confusion_report,
    unweighted_accuracy,
    weighted_accuracy,
)
from .modeling_turbo import TurboForAudioTextClassification
from .processing_turbo import TurboProcessor
from .trainer import TurboTrainer, TurboTrainingArguments

logger = logging.get_logger(__name__)

# Extra entries of an evaluation's results from its split (without transform), the label ids and the
# predicted ids, in the split's order.
SplitReport = Callable[[hf_datasets.Dataset, np.ndarray, np.ndarray], dict[str, Any]]


def build_model_and_processor(
    model_args: ModelArguments, label_names: list[str], **config_overrides: Any
) -> tuple[TurboForAudioTextClassification, TurboProcessor]:
    """Pretrained encoders + fresh Turbo heads for `label_names`, and the matching processor.

    `config_overrides` (TurboConfig fields) win over `model_args`' (e.g. resolved `class_weights`)."""
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
        **{**model_args.turbo_config_kwargs(), **config_overrides},
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
    split_report: SplitReport | None = None,
) -> dict[str, Any]:
    """Train on `train`, pick the best checkpoint on `validation`, report on `test`.

    Saves the model and processor in `training_args.output_dir` and returns the test metrics
    (keys prefixed `test_`): the scores, `test_confusion_matrix` (class names, counts, row-normalised)
    and `test_per_class_recall`, as in test_results.json (eval_results.json likewise for validation).
    `split_report(split, label_ids, predicted_ids)` adds entries of its own to both (e.g. IEMOCAP's
    breakdown by improvised / scripted utterances).
    """
    missing = {"train", "validation", "test"} - set(datasets)
    if missing:
        raise ValueError(f"datasets needs train, validation and test splits; missing {sorted(missing)}")
    for name in ("train", "validation", "test"):
        check_audio_column(datasets[name], name=f"the {name} split")
    set_seed(training_args.seed)
    datasets = _truncate(datasets, data_args)
    label_names = datasets["train"].features["label"].names
    _check_metric_for_best_model(training_args.metric_for_best_model, label_names, datasets["validation"])
    _warn_about_classes_without_training_rows(datasets["train"], label_names)
    # "balanced" becomes numbers here, from the training split, so the saved config holds what was used.
    requested = model_args.turbo_config_kwargs()["class_weights"]
    balanced = requested == "balanced"
    class_weights = balanced_class_weights(datasets["train"]["label"], label_names) if balanced else requested
    model, processor = build_model_and_processor(model_args, label_names, class_weights=class_weights)
    if model.config.class_weights is not None:
        source = (
            f"'balanced': inverse class frequency of {len(datasets['train'])} training rows"
            if balanced
            else "given"
        )
        weights = ", ".join(f"{name} {w:.4g}" for name, w in zip(label_names, model.config.class_weights))
        logger.info("class weights of the cross-entropy (%s), saved with the model: %s", source, weights)
    if data_args.max_text_length is not None:
        # Saved with the processor: the pipeline and the CLI then truncate transcripts as training did.
        processor.tokenizer.model_max_length = data_args.max_text_length
    # Training reads a random window of each utterance, evaluation the whole (or its centre). The
    # windows follow from the seed and the epoch, so a resumed run reads the same ones.
    rate = processor.sampling_rate
    data_seed = training_args.seed if training_args.data_seed is None else training_args.data_seed
    crops = DecodeAndCrop(rate, data_args.max_duration, random_crop=True, seed=data_seed)
    train = datasets["train"].with_transform(crops)
    evaluation = DecodeAndCrop(rate, data_args.eval_max_duration)
    validation, test = (datasets[name].with_transform(evaluation) for name in ("validation", "test"))
    # The Trainer would push every checkpoint with its own generic card; we push once, at the end,
    # with a card that states the method and the test results.
    push_to_hub = training_args.push_to_hub
    trainer = TurboTrainer(
        model=model,
        args=dataclasses.replace(training_args, push_to_hub=False),
        train_dataset=train,
        eval_dataset=validation,
        data_collator=DataCollatorForAudioText(
            processor,
            max_text_length=data_args.max_text_length,
            min_samples=model.receptive_field_samples,
            num_labels=model.config.num_labels,
        ),
        processing_class=processor,
        compute_metrics=compute_metrics,
    )

    train_result = trainer.train(resume_from_checkpoint=training_args.checkpoint_to_resume())
    # Early stopping watches validation only; the final evaluations below must not feed it.
    trainer.remove_callback(EarlyStoppingCallback)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    # Each results file (eval_results.json, test_results.json) holds the scores, the confusion matrix
    # and the per-class recall, and whatever `split_report` adds for the split.
    _evaluate_and_save(trainer, validation, datasets["validation"], "eval", label_names, split_report)
    test_metrics = _evaluate_and_save(trainer, test, datasets["test"], "test", label_names, split_report)
    if push_to_hub and trainer.is_world_process_zero():
        from .hub import push_to_hub as push_model

        push_model(
            trainer.model,
            processor,
            training_args.push_repo_id,
            eval_results=test_metrics,
            token=training_args.hub_token,
        )
    return test_metrics


def _evaluate_and_save(
    trainer: TurboTrainer,
    split: hf_datasets.Dataset,
    untransformed: hf_datasets.Dataset,
    prefix: str,
    label_names: list[str],
    split_report: SplitReport | None,
) -> dict[str, Any]:
    """Score `split`, log its numbers and save `<prefix>_results.json` with the confusion matrix too."""
    output = trainer.predict(split, metric_key_prefix=prefix)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    labels, predicted = np.asarray(output.label_ids), np.asarray(logits).argmax(axis=-1)
    results = dict(output.metrics)
    details = confusion_report(confusion_matrix(labels, predicted, len(label_names)), label_names)
    if split_report is not None:
        details.update(split_report(untransformed, labels, predicted))
    results.update({f"{prefix}_{key}": value for key, value in details.items()})
    # The log shows the numbers; nested entries (the matrix, breakdowns) are in the file only.
    trainer.log_metrics(
        prefix, {key: value for key, value in results.items() if isinstance(value, (int, float))}
    )
    trainer.save_metrics(prefix, results)
    return results


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
    folds = select_folds(iemocap_args.fold, num_folds, iemocap_args.protocol)
    many = len(folds) > 1
    fold_metrics = []
    for fold in folds:
        logger.info("IEMOCAP %s protocol, fold %d of %d", iemocap_args.protocol, fold, num_folds)
        fold_args, metrics = fold_training_args(training_args, fold, many), None
        if many and training_args.resumes_last:
            fold_args, metrics = resume_fold(fold_args, fold)
        if metrics is None:
            splits = load_iemocap(
                iemocap_args.iemocap_root,
                protocol=iemocap_args.protocol,
                fold=fold,
                validation_fraction=iemocap_args.validation_fraction,
                seed=training_args.seed,
                on_missing=iemocap_args.on_missing,
                method=iemocap_args.method,
                sessions=iemocap_args.sessions,
            )
            report = iemocap_split_report(splits["train"])
            metrics = train_and_evaluate(model_args, data_args, fold_args, splits, split_report=report)
        fold_metrics.append({"fold": fold, **metrics})
    return summarize_folds(fold_metrics, training_args.output_dir) if many else fold_metrics[0]


def iemocap_split_report(train: hf_datasets.Dataset) -> SplitReport:
    """The IEMOCAP additions to an evaluation's results: WA / UA (and the example count) of the
    improvised and of the scripted utterances (`by_method`), and how many of the split's transcripts
    occur verbatim in `train` (`transcripts_in_train`, in total and per method; normalised as
    `TRANSCRIPT_NORMALIZATION` says)."""
    from .data.iemocap import IEMOCAP_METHODS, TRANSCRIPT_NORMALIZATION, transcripts_seen_in

    train_texts = train["text"]

    def report(split: hf_datasets.Dataset, labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
        methods = np.asarray(split["method"])
        seen = transcripts_seen_in(split["text"], train_texts)
        by_method = {}
        for name, value in IEMOCAP_METHODS.items():
            rows = methods == value
            if rows.any():
                by_method[name] = {
                    "num_examples": int(rows.sum()),
                    "wa": weighted_accuracy(labels[rows], predicted[rows]),
                    "ua": unweighted_accuracy(labels[rows], predicted[rows]),
                    "transcripts_in_train": int(seen[rows].sum()),
                }
        in_train = {
            "count": int(seen.sum()),
            "num_examples": len(seen),
            "normalization": TRANSCRIPT_NORMALIZATION,
        }
        return {"by_method": by_method, "transcripts_in_train": in_train}

    return report


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
    splits = load_manifest(manifest_args.manifest, manifest_args, labels=labels)
    if not isinstance(splits, DatasetDict):
        raise ValueError(
            f"{manifest_args.manifest}: no {manifest_args.split_column!r} column; training needs rows marked "
            "train, validation and test"
        )
    # load_manifest refuses split values other than train / validation / test, naming the line.
    splits = with_validation_split(
        splits, manifest_args.validation_fraction, training_args.seed, source=manifest_args.manifest
    )
    return train_and_evaluate(model_args, data_args, training_args, splits)


# What an evaluation reports besides `METRICS`: the loss, and its cross-entropy part.
_EVALUATION_LOSSES = ("loss", "ce_loss")


def _check_metric_for_best_model(
    metric_for_best_model: str | None, label_names: list[str], validation: hf_datasets.Dataset
) -> None:
    """The metric that picks the best checkpoint must be one evaluation reports for this task and be
    defined on the validation split (EER needs both classes there): say so before training starts,
    not as a NaN at every evaluation and a silently kept last step."""
    metric = (metric_for_best_model or "").removeprefix("eval_")
    if not metric:
        return
    if metric not in METRICS and metric not in _EVALUATION_LOSSES:
        raise ValueError(
            f"--metric_for_best_model {metric_for_best_model!r} is not among what evaluation reports: "
            f"{sorted(METRICS) + list(_EVALUATION_LOSSES)}"
        )
    info = METRICS.get(metric)
    if info is None:
        return
    if info.binary_only and len(label_names) != 2:
        raise ValueError(
            f"--metric_for_best_model {metric} needs a binary task, but the data has {len(label_names)} "
            f"classes {label_names}; pass --metric_for_best_model ua"
        )
    if info.needs_every_class:
        counts = np.bincount(np.asarray(validation["label"], dtype=np.int64), minlength=len(label_names))
        missing = [name for name, count in zip(label_names, counts) if count == 0]
        if missing:
            present = {name: int(count) for name, count in zip(label_names, counts) if count > 0}
            raise ValueError(
                f"--metric_for_best_model {metric} is undefined on the validation split: {info.display_name} "
                f"needs rows of every class, but its {len(validation)} rows hold only {present} (none of "
                f"{missing}), so no checkpoint could be chosen on it. Give the validation split rows of every "
                "class (or --validation_fraction with a manifest without validation rows), or pass "
                "--metric_for_best_model ua"
            )


__all__ = [
    "build_model_and_processor",
    "train_and_evaluate",
    "setup_logging",
    "iemocap_split_report",
    "run_iemocap",
    "run_manifest",
]
