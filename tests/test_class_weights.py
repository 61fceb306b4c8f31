"""TurboConfig.class_weights: a class-weighted cross-entropy, checked, saved, and "balanced" resolved
from the training split by the recipes (command line and argument files)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TurboModelTester
from sklearn.utils.class_weight import compute_class_weight

from turbo_hf import TurboConfig, TurboForAudioTextClassification
from turbo_hf.arguments import DataArguments, IemocapArguments, ModelArguments, parse_recipe_arguments
from turbo_hf.losses import balanced_class_weights
from turbo_hf.trainer import TurboTrainingArguments

WEIGHTS = [0.5, 2.0, 4.0]


def test_cross_entropy_is_weighted_by_class_in_evaluation_and_in_both_training_views():
    tester = TurboModelTester(class_weights=WEIGHTS)
    model = tester.model().eval()
    batch = tester.inputs(batch_size=6)
    batch["labels"] = torch.tensor([0, 0, 0, 1, 2, 2])
    output = model(**batch)
    expected = F.cross_entropy(output.logits, batch["labels"], weight=torch.tensor(WEIGHTS))
    assert output.ce_loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert output.ce_loss.item() != pytest.approx(F.cross_entropy(output.logits, batch["labels"]).item())

    # Training with classify_on="both": each view's CE is weighted (no dropout: the views equal eval's).
    both = TurboModelTester(class_weights=WEIGHTS, classify_on="both", dropout=0.0).model()
    logits = both.eval()(**batch).logits
    weighted = F.cross_entropy(logits, batch["labels"], weight=torch.tensor(WEIGHTS))
    assert both.train()(**batch).ce_loss.item() == pytest.approx(weighted.item(), rel=1e-5)


def test_class_weights_are_saved_with_the_model(tmp_path):
    model = TurboModelTester(class_weights=[1, 2, 3]).model()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["class_weights"] == [1.0, 2.0, 3.0]
    assert TurboForAudioTextClassification.from_pretrained(tmp_path).config.class_weights == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1.0, 2.0], "has 2 values for num_labels=3"),
        ([1.0, 0.0, 1.0], "finite positive numbers.*: \\[0.0\\] are not"),
        ([1.0, float("nan"), 1.0], "finite positive numbers"),
        ([1.0, float("inf"), 1.0], "finite positive numbers"),
        ([1.0, "2", 1.0], "finite positive numbers"),
        ("inverse", "must be None, 'balanced' or a list of finite positive numbers"),
    ],
)
def test_bad_class_weights_are_errors_naming_the_field(weights, message):
    with pytest.raises(ValueError, match=f"TurboConfig.class_weights.*{message}"):
        TurboConfig(num_labels=3, class_weights=weights)


def test_a_model_is_never_built_with_balanced_left_unresolved():
    config = TurboModelTester().config
    config.class_weights = "balanced"
    with pytest.raises(ValueError, match="balanced_class_weights"):
        TurboForAudioTextClassification(config)


def test_balanced_weights_are_the_inverse_class_frequency():
    labels = [0] * 1708 + [1] * 1636 + [2] * 1084 + [3] * 1103  # IEMOCAP's four classes
    expected = compute_class_weight("balanced", classes=np.arange(4), y=np.array(labels))
    assert balanced_class_weights(labels, ["neu", "hap", "sad", "ang"]) == pytest.approx(expected.tolist())
    with pytest.raises(ValueError, match=r"\['sad'\] have none"):
        balanced_class_weights([0, 1, 1, 3], ["neu", "hap", "sad", "ang"])


RECIPE_TYPES = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--class_weights", "balanced"], "balanced"),
        (["--class_weights", "[1, 2.5, 1, 1]"], [1, 2.5, 1, 1]),
        ([], None),
    ],
)
def test_class_weights_from_the_command_line(tmp_path, argv, expected):
    model_args, *_ = parse_recipe_arguments(RECIPE_TYPES, {}, ["--output_dir", str(tmp_path), *argv])
    assert model_args.turbo_config_kwargs()["class_weights"] == expected


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("value", ["balanced", [1.0, 2.5, 1.0, 1.0]])
def test_class_weights_from_an_argument_file_and_overridden_after_it(tmp_path, suffix, value):
    path = tmp_path / f"args{suffix}"
    path.write_text(json.dumps({"output_dir": str(tmp_path), "class_weights": value}))  # JSON is YAML
    model_args, *_ = parse_recipe_arguments(RECIPE_TYPES, {}, [str(path)])
    assert model_args.turbo_config_kwargs()["class_weights"] == value
    model_args, *_ = parse_recipe_arguments(RECIPE_TYPES, {}, [str(path), "--class_weights", "[2, 1, 1, 1]"])
    assert model_args.turbo_config_kwargs()["class_weights"] == [2, 1, 1, 1]
    model_args, *_ = parse_recipe_arguments(RECIPE_TYPES, {}, [str(path), "--output_dir", str(tmp_path)])
    assert model_args.turbo_config_kwargs()["class_weights"] == value  # the file's value, not stringified
