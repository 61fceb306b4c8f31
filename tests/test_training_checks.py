"""Training set-ups that used to run on silently: a batch of one row, a selection metric undefined on the
validation split, NaN in the JSON the toolkit writes, fp16 on the CPU."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import test_trainer
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging as hf_logging

from turbo_hf import DataCollatorForAudioText, DecodeAndCrop, TurboForAudioTextClassification, TurboProcessor
from turbo_hf import losses as turbo_losses
from turbo_hf.arguments import DataArguments, ModelArguments
from turbo_hf.experiment import train_and_evaluate
from turbo_hf.folds import summarize_folds
from turbo_hf.hub import build_model_card
from turbo_hf.losses import info_nce
from turbo_hf.metrics import compute_metrics
from turbo_hf.trainer import TurboTrainer, TurboTrainingArguments

encoders = test_trainer.encoders
BINARY = ["non_directed", "directed"]
NO_NEGATIVES = "has no negatives"


def _strict(text: str):
    """json.loads that refuses NaN / Infinity, as every parser but Python's does."""

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def fresh_warnings():
    hf_logging.warning_once.cache_clear()
    yield
    hf_logging.warning_once.cache_clear()


def test_a_batch_of_one_row_warns_once_that_the_contrastive_terms_are_zero(tester, caplog, fresh_warnings):
    model = tester.model().train()
    with caplog.at_level("WARNING", logger="turbo_hf"):
        for _ in range(2):
            output = model(**tester.inputs(batch_size=1))
    assert output.in_modal_loss.item() == 0.0 and output.cross_modal_loss.item() == 0.0
    assert output.loss.item() == pytest.approx(model.config.ce_weight * output.ce_loss.item())
    warnings = [record for record in caplog.records if NO_NEGATIVES in record.getMessage()]
    assert len(warnings) == 1
    assert "per_device_train_batch_size" in warnings[0].getMessage()
    assert "dataloader_drop_last" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="turbo_hf"):
        model(**tester.inputs(batch_size=2))
    assert NO_NEGATIVES not in caplog.text


def test_one_row_per_process_is_enough_when_the_keys_of_all_processes_are_gathered(
    monkeypatch, caplog, fresh_warnings
):
    # Two processes of one row each, as torch.distributed would gather them (without starting them).
    monkeypatch.setattr(turbo_losses, "_distributed_world", lambda: (2, 0))
    monkeypatch.setattr(turbo_losses, "exchange_sizes", lambda sizes, device=None: [list(sizes)] * 2)
    monkeypatch.setattr(
        turbo_losses, "gather_with_grad", lambda rows, counts=None: (torch.cat([rows, -rows]), 0)
    )
    query, key = torch.randn(1, 8), torch.randn(1, 8)
    with caplog.at_level("WARNING", logger="turbo_hf"):
        assert info_nce(query, key, temperature=1.0).item() > 0.1  # the other process's row is a negative
    assert NO_NEGATIVES not in caplog.text
    with caplog.at_level("WARNING", logger="turbo_hf"):
        assert info_nce(query, key, temperature=1.0, gather_across_processes=False).item() == 0.0
    assert NO_NEGATIVES in caplog.text


@pytest.fixture(scope="module")
def binary_splits(tmp_path_factory):
    """8 training rows of both classes; a validation split that holds `directed` rows only."""
    root = tmp_path_factory.mktemp("binary")
    features = Features(
        {"audio": Value("string"), "text": Value("string"), "label": ClassLabel(names=BINARY)}
    )

    def split(name, labels):
        rows = {"audio": [], "text": [], "label": []}
        for i, label in enumerate(labels):
            path = root / f"{name}_{i}.wav"
            t = np.arange(8000) / 16000
            sf.write(path, 0.3 * np.sin(2 * np.pi * (150 + 200 * label) * t), 16000)
            rows["audio"].append(str(path))
            rows["text"].append(["a calm line", "a joy line"][label])
            rows["label"].append(label)
        return Dataset.from_dict(rows, features=features)

    return DatasetDict(
        train=split("train", [0, 1] * 4),
        validation=split("validation", [1, 1, 1]),
        test=split("test", [0, 1]),
    )


def test_eer_selection_on_a_one_class_validation_split_is_an_error_before_training(
    tmp_path, encoders, binary_splits
):
    args = test_trainer._args(
        tmp_path, eval_strategy="steps", eval_steps=1, save_strategy="steps", save_steps=1,
        load_best_model_at_end=True, metric_for_best_model="eer",
    )  # fmt: skip
    model_args = ModelArguments(
        audio_model_name_or_path=encoders[0], text_model_name_or_path=encoders[1], projection_dim=16
    )
    with pytest.raises(ValueError) as caught:
        train_and_evaluate(model_args, DataArguments(max_duration=0.5), args, binary_splits)
    message = str(caught.value)
    assert "--metric_for_best_model eer is undefined on the validation split" in message
    assert "{'directed': 3}" in message and "non_directed" in message and "ua" in message
    assert not (tmp_path / "run").exists()


def test_a_metric_for_best_model_that_evaluation_never_reports_is_an_error_before_training(
    tmp_path, encoders, binary_splits
):
    args = test_trainer._args(tmp_path, metric_for_best_model="uaa")
    model_args = ModelArguments(audio_model_name_or_path=encoders[0], text_model_name_or_path=encoders[1])
    with pytest.raises(ValueError, match="'uaa' is not among what evaluation reports"):
        train_and_evaluate(model_args, DataArguments(), args, binary_splits)


def _binary_trainer(encoders, splits, args):
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        *encoders, num_labels=2, projection_dim=16, id2label=dict(enumerate(BINARY))
    )
    processor = TurboProcessor.from_encoders_pretrained(*encoders)
    return TurboTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"].with_transform(DecodeAndCrop(16000)),
        eval_dataset=splits["validation"].with_transform(DecodeAndCrop(16000)),
        data_collator=DataCollatorForAudioText(processor),
        processing_class=processor,
        compute_metrics=compute_metrics,
    )


def test_a_nan_selection_metric_at_an_evaluation_stops_training_naming_the_classes_present(
    tmp_path, encoders, binary_splits
):
    args = test_trainer._args(
        tmp_path, max_steps=2, eval_strategy="steps", eval_steps=1, metric_for_best_model="eer"
    )
    trainer = _binary_trainer(encoders, binary_splits, args)
    with pytest.raises(
        ValueError, match="'eer' is undefined \\(NaN\\).* at step 1.*hold the class\\(es\\) directed:"
    ):
        trainer.train()
    # Outside training, an evaluation just reports the NaN (with metrics.py's warning).
    assert math.isnan(trainer.evaluate()["eval_eer"])


def test_every_json_the_toolkit_writes_holds_null_for_an_undefined_metric(tmp_path, encoders, binary_splits):
    trainer = _binary_trainer(encoders, binary_splits, test_trainer._args(tmp_path))
    trainer.save_metrics("test", {"test_eer": float("nan"), "test_ua": 0.5, "test_loss": np.float32(0.25)})
    output = tmp_path / "run"
    for name in ("test_results.json", "all_results.json"):
        results = _strict((output / name).read_text())
        assert results["test_eer"] is None and results["test_ua"] == 0.5 and results["test_loss"] == 0.25
    trainer.state.log_history.append({"eval_eer": float("nan"), "step": 1})
    trainer.state.best_metric = float("inf")
    trainer.save_state()
    state = _strict((output / "trainer_state.json").read_text())
    assert state["log_history"][-1]["eval_eer"] is None and state["best_metric"] is None
    summary = summarize_folds([{"test_wa": float("nan"), "test_ua": 0.5}] * 2, tmp_path / "folds")
    assert _strict((tmp_path / "folds" / "summary.json").read_text())["wa"]["mean"] is None
    assert math.isnan(summary["wa"]["mean"])  # the returned numbers are left as they are
    card = build_model_card(trainer.model, {"test_eer": float("nan"), "test_acc": 0.75})
    metadata = card.split("---")[1]
    assert "nan" not in metadata.lower() and "acc" in metadata and "eer" not in metadata


def test_a_checkpoint_trainer_state_is_strict_json(tmp_path, encoders, binary_splits):
    args = test_trainer._args(tmp_path, max_steps=1, save_strategy="steps", save_steps=1)
    trainer = _binary_trainer(encoders, binary_splits, args)
    trainer.train()
    trainer.state.log_history.append({"eval_eer": float("nan"), "step": 1})
    trainer._save_checkpoint(trainer.model, None)
    state = _strict((tmp_path / "run" / "checkpoint-1" / "trainer_state.json").read_text())
    assert state["log_history"][-1]["eval_eer"] is None and state["global_step"] == 1


def test_fp16_on_the_cpu_warns_that_the_run_trains_in_fp32(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="turbo_hf"):
        TurboTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert "fp16" not in caplog.text
    with caplog.at_level("WARNING", logger="turbo_hf"):
        TurboTrainingArguments(output_dir=str(tmp_path), use_cpu=True, fp16=True, report_to="none")
    assert "fp16=True has no effect on the CPU" in caplog.text and "trains in fp32" in caplog.text
    assert "--bf16 true" in caplog.text
