"""turbo_hf.metrics against scikit-learn and hand-checked values."""

import json
import math

import numpy as np
import pytest
import torch
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn import metrics as skm
from transformers import EvalPrediction

from turbo_hf.metrics import (
    METRICS,
    TurboClassificationMetric,
    accuracy,
    compute_metrics,
    confusion_matrix,
    confusion_report,
    equal_error_rate,
    greater_is_better,
    macro_f1,
    score_probabilities,
    unweighted_accuracy,
    weighted_accuracy,
)


def _random_labels(seed: int, n: int = 200, num_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=n)
    # Predictions right about 60% of the time, so that every score is far from 0 and 1.
    predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, num_classes, size=n))
    return labels, predictions


def _sklearn_eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """The usual EER recipe: the root of 1 - x - TPR(x) on the linearly interpolated ROC curve."""
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracies_and_f1_match_sklearn(seed):
    labels, predictions = _random_labels(seed)
    assert weighted_accuracy(labels, predictions) == pytest.approx(skm.accuracy_score(labels, predictions))
    assert accuracy(labels, predictions) == weighted_accuracy(labels, predictions)
    assert unweighted_accuracy(labels, predictions) == pytest.approx(
        skm.balanced_accuracy_score(labels, predictions)
    )
    assert macro_f1(labels, predictions) == pytest.approx(skm.f1_score(labels, predictions, average="macro"))
    np.testing.assert_array_equal(
        confusion_matrix(labels, predictions, 4), skm.confusion_matrix(labels, predictions, labels=range(4))
    )


def test_ua_skips_classes_absent_from_labels_and_f1_scores_predicted_only_classes_zero():
    labels = [0, 0, 1, 1]
    predictions = [0, 2, 1, 1]  # class 2 never true, class 3 nowhere
    assert unweighted_accuracy(labels, predictions, num_classes=4) == pytest.approx((0.5 + 1.0) / 2)
    expected = skm.f1_score(labels, predictions, average="macro", zero_division=0)
    assert macro_f1(labels, predictions, num_classes=4) == pytest.approx(expected)
    assert expected == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_ua_differs_from_wa_on_imbalanced_classes():
    labels = [0] * 9 + [1]
    predictions = [0] * 10
    assert weighted_accuracy(labels, predictions) == pytest.approx(0.9)
    assert unweighted_accuracy(labels, predictions) == pytest.approx(0.5)


def test_confusion_matrix_keeps_rows_of_absent_classes():
    matrix = confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [1, 1, 0], [0, 0, 0]])


def test_metrics_accept_lists_numpy_and_torch_tensors():
    labels, predictions = _random_labels(3, n=50)
    expected = unweighted_accuracy(labels.tolist(), predictions.tolist())
    assert unweighted_accuracy(torch.from_numpy(labels), torch.from_numpy(predictions)) == expected
    scores = torch.rand(50, requires_grad=True)
    assert equal_error_rate(labels % 2, scores.bfloat16()) == pytest.approx(
        _sklearn_eer(labels % 2, scores.bfloat16().double().detach().numpy())
    )
    binary = labels % 2
    assert equal_error_rate(torch.from_numpy(binary), scores) == pytest.approx(
        _sklearn_eer(binary, scores.detach().numpy())
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: accuracy([0, 1], [0]), "differ in length"),
        (lambda: unweighted_accuracy([], []), "empty"),
        (lambda: macro_f1([0, 1.5], [0, 1]), "integer"),
        (lambda: confusion_matrix([0, 3], [0, 1], num_classes=3), r"outside \[0, 3\)"),
        (lambda: accuracy([-1, 0], [0, 0]), ">= 0"),
        (lambda: equal_error_rate([1, 1, 1], [0.2, 0.4, 0.9]), "both classes"),
        (lambda: equal_error_rate([0, 1, 2], [0.2, 0.4, 0.9]), "outside"),
        (lambda: equal_error_rate([0, 1], [0.2, float("nan")]), "finite"),
        (lambda: equal_error_rate([0, 1], [0.2]), "differ in length"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_eer_matches_interpolated_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=300)
    scores = rng.normal(size=300) + 1.2 * labels
    assert equal_error_rate(labels, scores) == pytest.approx(_sklearn_eer(labels, scores), abs=1e-9)


def test_eer_with_many_tied_scores_matches_sklearn():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=200)
    scores = np.round(rng.random(200) + 0.5 * labels, 1)  # ~15 distinct values
    assert equal_error_rate(labels, scores) == pytest.approx(_sklearn_eer(labels, scores), abs=1e-9)


def test_eer_known_values():
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert equal_error_rate([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 1.0
    # One score for all: the ROC is the diagonal, which meets FPR = FNR at 0.5.
    assert equal_error_rate([0, 1, 0, 1, 1], [0.3] * 5) == pytest.approx(0.5)
    # The crossing can fall exactly on a ROC point: (0,0) (0,.5) (.5,.5) (.5,1) (1,1).
    assert equal_error_rate([1, 0, 1, 0], [0.9, 0.7, 0.5, 0.3]) == pytest.approx(0.5)
    # Crossing inside a sloped segment: the tie at 0.5 gives ROC (0,0) (0,1/3) (0,2/3) (1/3,1) (1,1),
    # whose segment from (0, 2/3) to (1/3, 1) meets TPR = 1 - FPR at FPR 1/6.
    assert equal_error_rate([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.5, 0.5, 0.1, 0.1]) == pytest.approx(1 / 6)
    assert equal_error_rate([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.5, 0.5, 0.1, 0.1]) == pytest.approx(
        _sklearn_eer(np.array([1, 1, 0, 1, 0, 0]), np.array([0.9, 0.8, 0.5, 0.5, 0.1, 0.1]))
    )


def test_compute_metrics_multiclass_logits():
    labels, predictions = _random_labels(4, n=120)
    logits = np.random.default_rng(0).normal(size=(120, 4))
    logits[np.arange(120), predictions] += 10.0  # argmax == predictions
    results = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    assert set(results) == {"wa", "ua", "macro_f1"}
    assert results["wa"] == pytest.approx(skm.accuracy_score(labels, predictions))
    assert results["ua"] == pytest.approx(skm.balanced_accuracy_score(labels, predictions))
    assert results["macro_f1"] == pytest.approx(skm.f1_score(labels, predictions, average="macro"))


def test_compute_metrics_binary_reports_acc_and_eer_from_softmax_of_class_1():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=150)
    logits = rng.normal(size=(150, 2)) + np.stack([1 - labels, labels], axis=1)
    hidden_states = rng.normal(size=(150, 3))  # extra outputs after the logits must be ignored
    results = compute_metrics(EvalPrediction(predictions=(logits, hidden_states), label_ids=labels))
    assert set(results) == {"wa", "ua", "macro_f1", "acc", "eer"}
    probability_1 = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    assert results["acc"] == pytest.approx(skm.accuracy_score(labels, logits.argmax(axis=1)))
    assert results["eer"] == pytest.approx(_sklearn_eer(labels, probability_1), abs=1e-9)


def test_compute_metrics_binary_with_one_class_reports_nan_eer():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    results = compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 0])))
    assert math.isnan(results["eer"])
    assert results["acc"] == 0.5


def test_compute_metrics_rejects_one_dimensional_logits():
    with pytest.raises(ValueError, match="num_classes"):
        compute_metrics(EvalPrediction(predictions=np.zeros(3), label_ids=np.zeros(3)))


def test_score_probabilities_reports_the_metrics_table_from_probabilities_not_logits():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, size=50)
    probabilities = rng.dirichlet([1.0, 1.0], size=50)
    results = score_probabilities(labels, probabilities)
    assert set(results) == set(METRICS)
    assert results["eer"] == pytest.approx(_sklearn_eer(labels, probabilities[:, 1]), abs=1e-9)
    # Probabilities are the softmax of their logs: compute_metrics on those logits agrees exactly.
    logits = np.log(probabilities)
    assert results == pytest.approx(compute_metrics(EvalPrediction(predictions=logits, label_ids=labels)))
    three = score_probabilities(labels, rng.dirichlet([1.0] * 3, size=50))
    assert set(three) == {name for name, info in METRICS.items() if not info.binary_only}
    with pytest.raises(ValueError, match="num_classes"):
        score_probabilities(labels, probabilities[:, 1])


def test_every_metric_has_a_direction_and_losses_are_lower_is_better():
    assert {name for name, info in METRICS.items() if not info.greater_is_better} == {"eer"}
    assert [greater_is_better(name) for name in ("eval_ua", "eer", "eval_ce_loss", "loss")] == [
        True,
        False,
        False,
        False,
    ]


def test_evaluate_metric_runs_offline_and_matches_functions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    labels, predictions = _random_labels(6, n=80)
    metric = TurboClassificationMetric(cache_dir=str(tmp_path))
    for start in range(0, 80, 25):
        metric.add_batch(predictions=predictions[start : start + 25], references=labels[start : start + 25])
    results = metric.compute()
    assert results == pytest.approx(
        {
            "wa": weighted_accuracy(labels, predictions),
            "ua": unweighted_accuracy(labels, predictions),
            "macro_f1": macro_f1(labels, predictions),
        }
    )
    again = TurboClassificationMetric("multiclass", keep_in_memory=True).compute(
        predictions=predictions.tolist(), references=labels.tolist()
    )
    assert again == pytest.approx(results)


def test_evaluate_metric_binary_config_needs_scores_and_matches_compute_metrics(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, size=60)
    logits = rng.normal(size=(60, 2)) + np.stack([1 - labels, labels], axis=1)
    probability_1 = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    metric = TurboClassificationMetric("binary", keep_in_memory=True)
    with pytest.raises(ValueError, match="scores"):
        metric.compute(predictions=logits.argmax(axis=1), references=labels)
    results = metric.compute(predictions=logits.argmax(axis=1), references=labels, scores=probability_1)
    assert results == pytest.approx(compute_metrics(EvalPrediction(predictions=logits, label_ids=labels)))


def test_evaluate_metric_rejects_unknown_config():
    with pytest.raises(ValueError, match="config_name"):
        TurboClassificationMetric("regression", keep_in_memory=True)


def test_confusion_report_counts_normalises_rows_and_its_recalls_average_to_ua():
    labels = [0, 0, 0, 1, 1, 3, 3, 3, 3]  # class 2 has no true example
    predictions = [0, 1, 0, 1, 2, 3, 0, 3, 3]
    names = ["neutral", "happy", "sad", "angry"]
    report = confusion_report(confusion_matrix(labels, predictions, num_classes=4), names)
    matrix = report["confusion_matrix"]
    assert matrix["class_names"] == names
    assert matrix["counts"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 3]]
    assert matrix["row_normalized"][0] == pytest.approx([2 / 3, 1 / 3, 0, 0])
    assert matrix["row_normalized"][2] == [None] * 4  # no true "sad": its recall is undefined
    recall = report["per_class_recall"]
    assert recall == {"neutral": pytest.approx(2 / 3), "happy": 0.5, "sad": None, "angry": 0.75}
    shown = [value for value in recall.values() if value is not None]
    assert sum(shown) / len(shown) == pytest.approx(unweighted_accuracy(labels, predictions, 4))
    json.dumps(report)  # plain lists and floats, ready for a results file


def test_confusion_report_checks_the_class_names_against_the_matrix():
    with pytest.raises(ValueError, match="does not match the 3 class names"):
        confusion_report(np.eye(2, dtype=int), ["a", "b", "c"])
