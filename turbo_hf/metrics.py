"""Classification metrics of the paper: WA, UA (emotion recognition), ACC and EER (deepfake detection).

Everything here is plain numpy so that metrics run in any process without scikit-learn or the network.
`METRICS` is the one home of the reported metrics' names, display names and directions (the trainer's
best-checkpoint choice, the model card and the recipes read it). Four entry points share the numbers:

- the functions (`weighted_accuracy`, `unweighted_accuracy`, `macro_f1`, `equal_error_rate`, ...),
- `score_probabilities`, from class probabilities (the pipeline's scores, as `turbo-hf evaluate` has them),
- `compute_metrics`, to pass to `transformers.Trainer(compute_metrics=...)`,
- `TurboClassificationMetric`, an `evaluate.Metric` instantiated directly (no `evaluate.load`, no Hub).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import datasets
import evaluate
import numpy as np

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Classification scores used by Turbo (Interspeech 2023): weighted accuracy (WA, plain accuracy),
unweighted accuracy (UA, mean per-class recall), macro F1 and, for binary tasks, accuracy (ACC) and the
equal error rate (EER) computed from the score of the positive class 1.
"""

PAPER_CITATION = """\
@inproceedings{turbo2023,
  title={Turbo your multi-modal classification with contrastive learning},
  author={Zhang, Zhiyu and Liu, Da and Liu, Shengqiang and Wang, Anna and Gao, Jie and Li, Yali},
  booktitle={Interspeech},
  year={2023}
}
"""

_INPUTS_DESCRIPTION = """\
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids.
    scores (`list[float]`, config "binary" only): score or probability of the positive class 1, for EER.
    num_classes (`int`, optional keyword): checks that every id lies in [0, num_classes).
Returns:
    "multiclass": {"wa", "ua", "macro_f1"}; "binary": also {"acc", "eer"}.
Examples:
    >>> metric = TurboClassificationMetric("binary", keep_in_memory=True)
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], scores=[0.1, 0.9, 0.6])
"""


class MetricInfo(NamedTuple):
    """How a metric is shown (model card, fold summaries) and which way is better."""

    display_name: str
    greater_is_better: bool
    binary_only: bool = False  # reported for two classes only
    needs_every_class: bool = False  # undefined (NaN) on labels that lack a class


# Every metric `score_probabilities` / `compute_metrics` report, by the key of their results.
METRICS: dict[str, MetricInfo] = {
    "wa": MetricInfo("WA (weighted accuracy)", greater_is_better=True),
    "ua": MetricInfo("UA (unweighted accuracy)", greater_is_better=True),
    "macro_f1": MetricInfo("Macro F1", greater_is_better=True),
    "acc": MetricInfo("Accuracy", greater_is_better=True, binary_only=True),
    "eer": MetricInfo(
        "EER (equal error rate)", greater_is_better=False, binary_only=True, needs_every_class=True
    ),
}


def greater_is_better(name: str) -> bool:
    """Direction of a metric as Trainer results name it ("eval_eer", "ua", "ce_loss"): losses and the
    lower-is-better entries of `METRICS` (EER) are lower-is-better, everything else greater."""
    name = name.removeprefix("eval_")
    if name in METRICS:
        return METRICS[name].greater_is_better
    return not name.endswith("loss")


def _as_array(values: Any, name: str) -> np.ndarray:
    """Lists, numpy arrays and torch tensors (any device, with or without grad) to a 1-D numpy array."""
    if hasattr(values, "detach"):  # torch.Tensor, without importing torch here
        values = values.detach().cpu()
        # numpy has no bfloat16; float64 holds every torch float exactly.
        values = (values.double() if values.is_floating_point() else values).numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per example); got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one example")
    return array


def _as_class_ids(values: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    array = _as_array(values, name)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must hold integer class ids; got dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.integer):
        # Accept 1.0 for 1 (e.g. labels stored as floats), never 0.7.
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(
                f"{name} must hold integer class ids; got non-integer values such as {array[:3]}"
            )
        array = array.astype(np.int64)
    if np.any(array < 0):
        raise ValueError(f"{name} must hold class ids >= 0; got {int(array.min())}")
    if num_classes is not None and np.any(array >= num_classes):
        raise ValueError(
            f"{name} holds class id {int(array.max())}, outside [0, {num_classes}) (num_classes)"
        )
    return array.astype(np.int64, copy=False)


def _check_same_length(labels: np.ndarray, other: np.ndarray, other_name: str) -> None:
    if len(labels) != len(other):
        raise ValueError(f"labels and {other_name} differ in length: {len(labels)} vs {len(other)}")


def _labels_and_predictions(
    labels: Any, predictions: Any, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    labels = _as_class_ids(labels, "labels", num_classes)
    predictions = _as_class_ids(predictions, "predictions", num_classes)
    _check_same_length(labels, predictions, "predictions")
    return labels, predictions


def accuracy(labels: Any, predictions: Any) -> float:
    """Fraction of examples whose prediction equals the label."""
    labels, predictions = _labels_and_predictions(labels, predictions)
    return float(np.mean(labels == predictions))


def weighted_accuracy(labels: Any, predictions: Any) -> float:
    """WA as reported in speech emotion recognition: plain accuracy (classes weighted by their size)."""
    return accuracy(labels, predictions)


def confusion_matrix(labels: Any, predictions: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts `(num_classes, num_classes)`: row = true class, column = predicted class.

    `num_classes` defaults to the largest id seen plus one; pass it so that absent classes keep their row.
    """
    labels, predictions = _labels_and_predictions(labels, predictions, num_classes)
    if num_classes is None:
        num_classes = int(max(labels.max(), predictions.max())) + 1
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_recall(matrix: Any) -> np.ndarray:
    """Recall of each class (row) of a confusion matrix `(C, C)`; NaN for a class with no true example."""
    matrix = np.asarray(matrix, dtype=np.float64)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def unweighted_accuracy(labels: Any, predictions: Any, num_classes: int | None = None) -> float:
    """UA: mean per-class recall over the classes present in `labels` (balanced accuracy).

    Classes with no example in `labels` are skipped, as their recall is undefined. `num_classes`, when
    given, only checks the ids.
    """
    return float(np.nanmean(per_class_recall(confusion_matrix(labels, predictions, num_classes))))


def confusion_report(matrix: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """What a results JSON holds about the errors: the confusion matrix `(C, C)` of counts (row = true
    class, column = predicted), the same divided by each row's total, and each class's recall.

    Returns `{"confusion_matrix": {"class_names", "counts", "row_normalized"}, "per_class_recall":
    {name: recall}}` as plain lists and floats. A class with no true example has a row of None and a
    recall of None; UA is the mean of the other recalls. Matrices of several folds add up: pass their sum.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(class_names):
        raise ValueError(
            f"confusion matrix of shape {counts.shape} does not match the {len(class_names)} class names"
        )
    support = counts.sum(axis=1)
    recall = per_class_recall(counts)
    normalized = [
        (row / total).tolist() if total > 0 else [None] * len(row) for row, total in zip(counts, support)
    ]
    return {
        "confusion_matrix": {
            "class_names": [str(name) for name in class_names],
            "counts": counts.tolist(),
            "row_normalized": normalized,
        },
        "per_class_recall": {
            str(name): None if np.isnan(value) else float(value) for name, value in zip(class_names, recall)
        },
    }


def macro_f1(labels: Any, predictions: Any, num_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes seen in labels or predictions.

    A class that is predicted but never true scores 0 (scikit-learn's default); classes seen in neither
    are skipped. `num_classes`, when given, only checks the ids.
    """
    matrix = confusion_matrix(labels, predictions, num_classes)
    true_positives = np.diag(matrix).astype(np.float64)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (true count + predicted count); no 0/0 for classes that are seen.
    denominator = matrix.sum(axis=1) + matrix.sum(axis=0)
    seen = denominator > 0
    return float(np.mean(2.0 * true_positives[seen] / denominator[seen]))


def _roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and true-positive rates at every distinct threshold, starting from (0, 0)."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # Tied scores share one threshold, so only the last index of each run of equal scores is a ROC point.
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    true_positives = np.cumsum(sorted_labels)[last_of_run]
    false_positives = last_of_run + 1 - true_positives
    fpr = np.r_[0.0, false_positives / false_positives[-1]]
    tpr = np.r_[0.0, true_positives / true_positives[-1]]
    return fpr, tpr


def equal_error_rate(labels: Any, scores: Any) -> float:
    """EER of binary `labels` (0/1) given `scores` of the positive class 1 (higher means more likely 1).

    The ROC curve is walked from the strictest threshold; the EER is where the false-accept rate (FPR)
    meets the false-reject rate (1 - TPR), linearly interpolated on the ROC segment that crosses
    FPR = FNR rather than read off the nearest threshold. Perfect separation gives 0, reversed scores 1.
    """
    labels = _as_class_ids(labels, "labels", num_classes=2)
    scores = _as_array(scores, "scores").astype(np.float64)
    _check_same_length(labels, scores, "scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite; found NaN or infinity")
    if labels.min() == labels.max():
        raise ValueError(
            f"equal_error_rate needs both classes in labels; all {len(labels)} labels are {int(labels[0])}"
        )
    fpr, tpr = _roc_points(labels, scores)
    gap = fpr - (1.0 - tpr)  # FPR - FNR: -1 at the first point, +1 at the last, non-decreasing
    cross = int(np.argmax(gap >= 0))  # first point at or past the crossing; index 0 is never it
    if gap[cross] == 0:
        return float(fpr[cross])
    before = cross - 1
    fraction = -gap[before] / (gap[cross] - gap[before])
    return float(fpr[before] + fraction * (fpr[cross] - fpr[before]))


def _classification_scores(
    labels: np.ndarray,
    predictions: np.ndarray,
    positive_scores: np.ndarray | None = None,
    num_classes: int | None = None,
) -> dict[str, float]:
    """The one place that decides which numbers a task reports (the keys of `METRICS`)."""
    results = {
        "wa": weighted_accuracy(labels, predictions),
        "ua": unweighted_accuracy(labels, predictions, num_classes),
        "macro_f1": macro_f1(labels, predictions, num_classes),
    }
    if positive_scores is not None:
        results["acc"] = results["wa"]
        if np.unique(labels).size < 2:
            # One-class evaluation sets happen (tiny dev splits, debugging); report NaN rather than
            # stopping a training run at its first evaluation.
            logger.warning("EER is undefined: all %d labels are %d; reporting NaN", len(labels), labels[0])
            results["eer"] = float("nan")
        else:
            results["eer"] = equal_error_rate(labels, positive_scores)
    return results


def score_probabilities(labels: Any, probabilities: Any) -> dict[str, float]:
    """WA, UA and macro F1 of class probabilities `(N, C)` against label ids `(N,)`; with two classes
    also ACC and the EER of the probability of class 1."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"expected class scores of shape (N, num_classes); got {probabilities.shape}")
    num_classes = probabilities.shape[1]
    labels = _as_class_ids(labels, "label_ids", num_classes)
    positive_scores = probabilities[:, 1] if num_classes == 2 else None
    return _classification_scores(labels, probabilities.argmax(axis=-1), positive_scores, num_classes)


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """`Trainer(compute_metrics=compute_metrics)`: logits `(N, C)` and label ids `(N,)` to a dict of scores.

    `score_probabilities` of the softmax of the logits. Tuples of predictions (logits followed by
    other model outputs) use their first element.
    """
    logits, label_ids = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    if isinstance(label_ids, (tuple, list)):
        label_ids = label_ids[0]
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"compute_metrics expects logits of shape (N, num_classes); got {logits.shape}")
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return score_probabilities(label_ids, shifted / shifted.sum(axis=-1, keepdims=True))


class TurboClassificationMetric(evaluate.Metric):
    """WA / UA / macro F1 (config "multiclass", the default) or also ACC / EER (config "binary").

    Works offline: build it directly instead of through `evaluate.load`, e.g.
    `TurboClassificationMetric("binary").compute(predictions=..., references=..., scores=...)`.
    `add_batch` / `add` accumulate as for any evaluate metric.
    """

    CONFIG_NAMES = ("multiclass", "binary")

    def _info(self) -> evaluate.MetricInfo:
        # evaluate turns config_name=None into "default".
        if self.config_name not in (*self.CONFIG_NAMES, "default"):
            raise ValueError(
                f"TurboClassificationMetric config_name must be one of {self.CONFIG_NAMES}; got {self.config_name!r}"
            )
        features = {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
        if self.config_name == "binary":
            features["scores"] = datasets.Value("float64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=PAPER_CITATION,
            inputs_description=_INPUTS_DESCRIPTION,
            features=datasets.Features(features),
        )

    def _compute(
        self,
        predictions: Any = None,
        references: Any = None,
        scores: Any = None,
        num_classes: int | None = None,
    ) -> dict[str, float]:
        if self.config_name == "binary" and num_classes is None:
            num_classes = 2
        labels, predictions = _labels_and_predictions(references, predictions, num_classes)
        positive_scores = None
        if self.config_name == "binary":
            positive_scores = _as_array(scores, "scores").astype(np.float64)
            _check_same_length(labels, positive_scores, "scores")
        return _classification_scores(labels, predictions, positive_scores, num_classes)


__all__ = [
    "METRICS",
    "MetricInfo",
    "TurboClassificationMetric",
    "accuracy",
    "compute_metrics",
    "confusion_matrix",
    "confusion_report",
    "equal_error_rate",
    "greater_is_better",
    "macro_f1",
    "per_class_recall",
    "score_probabilities",
    "unweighted_accuracy",
    "weighted_accuracy",
]
