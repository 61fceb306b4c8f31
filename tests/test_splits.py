"""The held-out validation split of a manifest, and the folds `--fold` names."""

from __future__ import annotations

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from turbo_hf.data.splits import with_validation_split
from turbo_hf.folds import select_folds


def _splits(per_class: int, names=("no", "yes"), with_train: bool = True) -> DatasetDict:
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    labels = [label for label in range(len(names)) for _ in range(per_class)]
    rows = Dataset.from_dict(
        {"text": [str(i) for i in range(len(labels))], "label": labels}, features=features
    )
    return DatasetDict(train=rows, test=rows) if with_train else DatasetDict(test=rows)


@pytest.mark.parametrize(
    "per_class, fraction, split",
    [(4, 0.1, "validation"), (1, 0.5, "validation"), (4, 0.9, "train")],
    ids=["0.1-of-8", "half-of-1-per-class", "0.9-leaves-no-train"],
)
def test_a_fraction_that_leaves_a_split_empty_is_an_error_with_the_class_counts(per_class, fraction, split):
    with pytest.raises(
        ValueError, match=rf"{split} would have 0 rows.*{fraction}.*'no': {per_class}, 'yes': {per_class}"
    ):
        with_validation_split(_splits(per_class), fraction, seed=0, source="m.csv")


def test_without_a_train_split_there_is_nothing_to_hold_out():
    with pytest.raises(ValueError, match=r"m.csv has no train rows.*\['test'\]"):
        with_validation_split(_splits(4, with_train=False), 0.25, seed=0, source="m.csv")


@pytest.mark.parametrize("fraction", ["0.1", True, [0.1]])
def test_a_fraction_that_is_not_a_number_is_a_type_error(fraction):
    with pytest.raises(TypeError, match="validation_fraction must be a number"):
        with_validation_split(_splits(4), fraction, seed=0, source="m.csv")


@pytest.mark.parametrize("fraction", [float("nan"), 1.5, 0, -0.1, 1])
def test_a_fraction_outside_zero_one_is_a_value_error(fraction):
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\)"):
        with_validation_split(_splits(4), fraction, seed=0, source="m.csv")


def test_select_folds_reads_ascii_numbers_ints_and_all():
    assert select_folds("all", 5, "session") == [0, 1, 2, 3, 4]
    assert select_folds("3", 5, "session") == select_folds(3, 5, "session") == [3]
    for bad in ("²", "５", "-1", "5", " 0", "1,2", "ALL"):
        with pytest.raises(ValueError, match=r"--fold must be 0\.\.4 or 'all' for protocol 'session'"):
            select_folds(bad, 5, "session")
    for bad in (True, 1.0, None):
        with pytest.raises(TypeError, match="--fold must be"):
            select_folds(bad, 5, "session")
