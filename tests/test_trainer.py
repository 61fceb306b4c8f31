import dataclasses
import json
import logging
import sys

import numpy as np
import pytest
import soundfile as sf
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from huggingface_hub.dataclasses import strict
from transformers import AutoModel, AutoProcessor, HfArgumentParser, PreTrainedConfig

from turbo_hf import (
    DataCollatorForAudioText,
    DecodeAndCrop,
    TurboConfig,
    TurboForAudioTextClassification,
    TurboProcessor,
)
from turbo_hf.arguments import (
    DataArguments,
    IemocapArguments,
    ModelArguments,
    parse_recipe_arguments,
    with_config_fields,
)
from turbo_hf.experiment import train_and_evaluate
from turbo_hf.folds import summarize_folds
from turbo_hf.metrics import compute_metrics, confusion_report
from turbo_hf.testing.tiny_encoders import save_tiny_audio_encoder, save_tiny_text_encoder
from turbo_hf.trainer import TurboTrainer, TurboTrainingArguments

LABELS = ["neutral", "happy", "sad"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    audio = save_tiny_audio_encoder(root / "audio", "wav2vec2", mask_time_prob=0.0)
    text = save_tiny_text_encoder(root / "text", "bert", words=["calm", "joy", "tears"])
    return str(audio), str(text)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """A 3-class corpus of real wav files: 12 train, 6 validation, 6 test."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    features = Features(
        {
            "id": Value("string"),
            "audio": Value("string"),
            "text": Value("string"),
            "label": ClassLabel(names=LABELS),
        }
    )
    words = ["calm", "joy", "tears"]

    def split(name, size):
        rows = {"id": [], "audio": [], "text": [], "label": []}
        for i in range(size):
            label = i % 3
            path = root / f"{name}_{i}.wav"
            t = np.arange(int(16000 * rng.uniform(0.4, 0.8))) / 16000
            sf.write(path, 0.3 * np.sin(2 * np.pi * (150 + 100 * label) * t), 16000)
            rows["id"].append(f"{name}_{i}")
            rows["audio"].append(str(path))
            rows["text"].append(f"a {words[label]} line")
            rows["label"].append(label)
        return Dataset.from_dict(rows, features=features)

    return DatasetDict(train=split("train", 12), validation=split("validation", 6), test=split("test", 6))


def _args(tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    values.update(overrides)
    return TurboTrainingArguments(**values)


def _trainer(encoders, splits, args, loss_mode="turbo", **config):
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        *encoders, num_labels=3, **{"projection_dim": 16, "loss_mode": loss_mode, **config}
    )
    processor = TurboProcessor.from_encoders_pretrained(*encoders)
    return TurboTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"].with_transform(
            DecodeAndCrop(16000, max_duration=0.5, random_crop=True)
        ),
        eval_dataset=splits["validation"].with_transform(DecodeAndCrop(16000)),
        data_collator=DataCollatorForAudioText(processor),
        processing_class=processor,
        compute_metrics=compute_metrics,
    )


def test_trainer_logs_the_loss_parts_beside_the_total(tmp_path, encoders, splits):
    trainer = _trainer(encoders, splits, _args(tmp_path))
    trainer.train()
    train_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(train_logs) == 2
    for log in train_logs:
        assert {"ce_loss", "in_modal_loss", "cross_modal_loss", "contrastive_loss"} <= set(log)
        expected = 0.5 * log["ce_loss"] + 0.5 * (log["in_modal_loss"] + log["cross_modal_loss"])
        assert log["loss"] == pytest.approx(expected, rel=1e-3)
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_ce_loss", "eval_wa", "eval_ua", "eval_macro_f1"} <= set(metrics)
    assert "eval_in_modal_loss" not in metrics
    # In evaluation the loss is the CE; both are weighted by rows (6 rows: batches of 4 and 2).
    assert metrics["eval_loss"] == pytest.approx(metrics["eval_ce_loss"], rel=1e-5)


def test_vanilla_training_logs_only_cross_entropy(tmp_path, encoders, splits):
    trainer = _trainer(encoders, splits, _args(tmp_path, max_steps=1), loss_mode="vanilla")
    trainer.train()
    log = next(log for log in trainer.state.log_history if "loss" in log)
    assert "ce_loss" in log and "in_modal_loss" not in log and "cross_modal_loss" not in log


def test_evaluation_uses_whole_utterances_while_training_crops(tmp_path, encoders, splits):
    trainer = _trainer(encoders, splits, _args(tmp_path))
    train_batch = next(iter(trainer.get_train_dataloader()))
    eval_batch = next(iter(trainer.get_eval_dataloader()))
    assert train_batch["input_values"].shape[1] <= 8000
    assert eval_batch["input_values"].shape[1] > 8000


def test_encoder_learning_rate_gives_encoders_their_own_group(tmp_path, encoders, splits):
    trainer = _trainer(encoders, splits, _args(tmp_path, encoder_learning_rate=1e-5))
    optimizer = trainer.create_optimizer()
    encoder_ids = {
        id(p) for n, p in trainer.model.named_parameters() if n.startswith(("audio_model", "text_model"))
    }
    for group in optimizer.param_groups:
        in_encoders = {id(p) in encoder_ids for p in group["params"]}
        assert len(in_encoders) == 1
        assert group["lr"] == (1e-5 if in_encoders.pop() else 1e-3)
    counted = sum(len(g["params"]) for g in optimizer.param_groups)
    assert counted == sum(1 for p in trainer.model.parameters() if p.requires_grad)
    # The group order is saved with every checkpoint: encoder groups first, as earlier versions had it.
    assert optimizer.param_groups[0]["lr"] == 1e-5


def test_encoder_learning_rate_is_logged_beside_the_heads_rate(tmp_path, encoders, splits):
    trainer = _trainer(encoders, splits, _args(tmp_path, max_steps=2, encoder_learning_rate=1e-5))
    trainer.train()
    log = next(log for log in trainer.state.log_history if "loss" in log)
    # The scheduler scales both alike; the heads' rate is the Trainer's `learning_rate`.
    assert log["encoder_learning_rate"] / log["learning_rate"] == pytest.approx(1e-2)


def test_resume_from_checkpoint_continues_the_step_count(tmp_path, encoders, splits):
    first = _trainer(encoders, splits, _args(tmp_path, max_steps=2, save_strategy="steps", save_steps=2))
    first.train()
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert checkpoint.is_dir()
    resumed = _trainer(encoders, splits, _args(tmp_path, max_steps=4, save_strategy="no"))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    steps = [log["step"] for log in resumed.state.log_history if "loss" in log]
    assert steps[-2:] == [3, 4]


def test_early_stopping_needs_a_best_model_metric(tmp_path, encoders, splits):
    with pytest.raises(ValueError, match="metric_for_best_model"):
        _trainer(encoders, splits, _args(tmp_path, early_stopping_patience=2))


def test_train_and_evaluate_saves_a_loadable_model_and_test_metrics(tmp_path, encoders, splits):
    args = _args(
        tmp_path,
        max_steps=-1,
        num_train_epochs=2,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="ua",
        early_stopping_patience=3,
    )
    model_args = ModelArguments(
        audio_model_name_or_path=encoders[0], text_model_name_or_path=encoders[1], projection_dim=16
    )
    metrics = train_and_evaluate(model_args, DataArguments(max_duration=0.5), args, splits)
    assert {"test_wa", "test_ua", "test_macro_f1", "test_loss"} <= set(metrics)
    output = tmp_path / "run"
    assert json.loads((output / "test_results.json").read_text())["test_ua"] == metrics["test_ua"]
    model = AutoModel.from_pretrained(output)
    processor = AutoProcessor.from_pretrained(output)
    assert model.config.id2label == dict(enumerate(LABELS))
    assert isinstance(processor, TurboProcessor)
    assert processor.tokenizer.model_max_length == DataArguments().max_text_length  # as in training


def test_summarize_folds_writes_mean_and_sample_std(tmp_path):
    folds = [
        {"test_wa": 0.5, "test_ua": 0.4},
        {"test_wa": 0.7, "test_ua": 0.6},
        {"test_wa": 0.6, "test_ua": 0.8},
    ]
    summary = summarize_folds(folds, tmp_path)
    assert summary["wa"]["mean"] == pytest.approx(0.6)
    assert summary["ua"]["std"] == pytest.approx(np.std([0.4, 0.6, 0.8], ddof=1))
    assert json.loads((tmp_path / "summary.json").read_text())["num_folds"] == 3
    assert "60.00 ± 10.00" in (tmp_path / "summary.md").read_text()


def _fold_with_errors(counts, by_method=None):
    names = ["neutral", "happy"]
    fold = {
        "test_wa": 0.5,
        "test_ua": 0.5,
        **{f"test_{k}": v for k, v in confusion_report(counts, names).items()},
    }
    if by_method is not None:
        fold["test_by_method"] = by_method
        fold["test_transcripts_in_train"] = {
            "count": sum(part["transcripts_in_train"] for part in by_method.values()),
            "num_examples": sum(part["num_examples"] for part in by_method.values()),
            "normalization": "as said",
        }
    return fold


def test_summarize_folds_sums_the_confusion_matrices_and_draws_them(tmp_path):
    part = {"num_examples": 4, "wa": 0.5, "ua": 0.5, "transcripts_in_train": 1}
    folds = [
        _fold_with_errors(
            [[3, 1], [2, 2]], {"improvised": part, "scripted": {**part, "transcripts_in_train": 3}}
        ),
        _fold_with_errors([[1, 0], [0, 4]], {"improvised": {**part, "wa": 0.7}, "scripted": part}),
    ]
    summary = summarize_folds(folds, tmp_path)
    assert summary["confusion_matrix"]["counts"] == [[4, 1], [2, 6]]
    assert summary["per_class_recall"] == {"neutral": pytest.approx(0.8), "happy": pytest.approx(0.75)}
    assert summary["by_method"]["improvised"]["wa"]["mean"] == pytest.approx(0.6)
    assert summary["by_method"]["scripted"]["transcripts_in_train"] == 4
    assert summary["transcripts_in_train"]["count"] == 6
    text = (tmp_path / "summary.md").read_text()
    assert "| neutral | 4 (80.0%) | 1 (20.0%) | 80.00% |" in text
    assert "mean of these recalls: 77.50%" in text and "6 of 16 test transcripts" in text
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_without_matplotlib_the_summary_has_the_matrix_and_says_why_there_is_no_png(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with caplog.at_level(logging.WARNING, logger="turbo_hf"):
        summarize_folds([_fold_with_errors([[3, 1], [2, 2]])], tmp_path)
    assert "| happy | 2 (50.0%) | 2 (50.0%) | 50.00% |" in (tmp_path / "summary.md").read_text()
    assert not (tmp_path / "confusion_matrix.png").exists()
    assert "matplotlib is not installed" in caplog.text


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_recipe_arguments_from_a_file_override_recipe_defaults(tmp_path, suffix):
    values = {"output_dir": str(tmp_path), "loss_mode": "cross", "fold": "all", "metric_for_best_model": "wa"}
    path = tmp_path / f"args{suffix}"
    path.write_text(json.dumps(values))  # JSON is valid YAML
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    model_args, _, iemocap_args, training_args = parse_recipe_arguments(
        types, {"metric_for_best_model": "ua", "save_total_limit": 2}, [str(path)]
    )
    assert model_args.loss_mode == "cross" and iemocap_args.fold == "all"
    assert training_args.metric_for_best_model == "wa" and training_args.save_total_limit == 2


def test_command_line_values_after_an_argument_file_override_it(tmp_path):
    path = tmp_path / "paper.json"
    path.write_text(
        json.dumps({"output_dir": str(tmp_path), "fold": "all", "learning_rate": 1e-5, "bf16": False})
    )
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    _, _, iemocap_args, training_args = parse_recipe_arguments(
        types, {"metric_for_best_model": "ua"}, [str(path), "--fold", "3", "--learning_rate", "2e-5"]
    )
    assert iemocap_args.fold == "3" and training_args.learning_rate == 2e-5
    assert training_args.output_dir == str(tmp_path) and training_args.metric_for_best_model == "ua"


def test_unknown_keys_in_an_argument_file_are_named(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("output_dir: out\nlearning_rte: 0.001\n")
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    with pytest.raises(ValueError, match=r"typo.yaml: unknown argument\(s\) \['learning_rte'\]"):
        parse_recipe_arguments(types, {}, [str(path)])


def test_recipe_arguments_from_the_command_line_use_recipe_defaults(tmp_path):
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    model_args, data_args, _, training_args = parse_recipe_arguments(
        types, {"metric_for_best_model": "ua"}, ["--output_dir", str(tmp_path), "--max_duration", "4"]
    )
    assert training_args.metric_for_best_model == "ua"
    assert data_args.max_duration == 4.0 and model_args.loss_mode == "turbo"
    assert training_args.remove_unused_columns is False


@pytest.mark.parametrize(
    "metric,expected",
    [
        ("ua", True),
        ("eval_wa", True),
        ("eer", False),
        ("eval_eer", False),
        ("loss", False),
        ("ce_loss", False),
    ],
)
def test_the_best_checkpoint_direction_follows_the_metric(tmp_path, metric, expected):
    args = TurboTrainingArguments(output_dir=str(tmp_path), metric_for_best_model=metric)
    assert args.greater_is_better is expected
    explicit = TurboTrainingArguments(
        output_dir=str(tmp_path), metric_for_best_model=metric, greater_is_better=not expected
    )
    assert explicit.greater_is_better is (not expected)


def test_overriding_only_the_recipe_metric_also_turns_the_direction(tmp_path):
    # run_dsd selects by EER (lower is better); a multi-class run switches to UA alone.
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    *_, training_args = parse_recipe_arguments(
        types,
        {"metric_for_best_model": "eer"},
        ["--output_dir", str(tmp_path), "--metric_for_best_model", "ua"],
    )
    assert training_args.metric_for_best_model == "ua" and training_args.greater_is_better is True


def test_group_by_length_batches_utterances_of_similar_duration(tmp_path, encoders, splits):
    train = splits["train"].add_column(
        "duration", [float(i % 6) + (0.1 if i < 6 else 0.2) for i in range(12)]
    )
    args = _args(tmp_path, train_sampling_strategy="group_by_length", length_column_name="duration")
    trainer = _trainer(encoders, DatasetDict(train=train, validation=splits["validation"]), args)
    sampler = trainer._get_train_sampler()
    order = list(sampler)

    def decode_nothing(batch):
        raise AssertionError("reading the durations ran the split's audio transform")

    assert list(trainer._get_train_sampler(train.with_transform(decode_nothing))) == order
    assert sorted(order) == list(range(12))
    durations = train["duration"]
    batches = [sorted(durations[i] for i in order[k : k + 4]) for k in range(0, 12, 4)]
    assert all(batch[-1] - batch[0] < 2.5 for batch in batches)


def test_group_by_length_without_the_length_column_is_an_error_naming_it(tmp_path, encoders, splits):
    args = _args(tmp_path, train_sampling_strategy="group_by_length", length_column_name="seconds")
    trainer = _trainer(encoders, splits, args)
    with pytest.raises(ValueError, match="'seconds' column"):
        trainer.train()


def test_every_fold_gets_its_own_folder_and_hub_repository(tmp_path):
    from turbo_hf.folds import fold_training_args

    args = TurboTrainingArguments(output_dir=str(tmp_path / "iemocap"), report_to="none")
    fold = fold_training_args(args, 3, many=True)
    assert fold.output_dir == str(tmp_path / "iemocap" / "fold_3") and fold.hub_model_id == "iemocap-fold3"
    assert fold_training_args(args, 3, many=False) is args
    resumed = TurboTrainingArguments(
        output_dir=str(tmp_path), resume_from_checkpoint="ckpt", report_to="none"
    )
    with pytest.raises(ValueError, match="--fold N"):
        fold_training_args(resumed, 0, many=True)
    last = dataclasses.replace(resumed, resume_from_checkpoint="last")
    assert fold_training_args(last, 2, many=True).resume_from_checkpoint == "last"


def test_classes_without_training_rows_are_named_in_a_warning(caplog):
    from datasets import ClassLabel, Dataset, Features

    from turbo_hf.experiment import _warn_about_classes_without_training_rows

    names = ["0", "1", "yes"]
    train = Dataset.from_dict({"label": [0, 1, 1, 0]}, features=Features({"label": ClassLabel(names=names)}))
    with caplog.at_level("WARNING", logger="turbo_hf"):
        _warn_about_classes_without_training_rows(train, names)
    assert "['yes'] have no training rows" in caplog.text


def test_a_manifest_without_validation_rows_gets_a_stratified_held_out_split_on_request():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    from turbo_hf.data.splits import with_validation_split

    features = Features({"text": Value("string"), "label": ClassLabel(names=["no", "yes"])})
    train = Dataset.from_dict(
        {"text": [str(i) for i in range(40)], "label": [0] * 30 + [1] * 10}, features=features
    )
    test = Dataset.from_dict({"text": ["t"], "label": [1]}, features=features)
    splits = DatasetDict(train=train, test=test)
    with pytest.raises(ValueError, match=r"dsd.csv has no validation rows.*--validation_fraction"):
        with_validation_split(splits, None, seed=0, source="dsd.csv")
    carved = with_validation_split(splits, 0.2, seed=0, source="dsd.csv")
    assert len(carved["validation"]) == 8 and len(carved["train"]) == 32
    assert sorted(carved["validation"]["label"]) == [0] * 6 + [1] * 2  # the 3:1 class ratio kept
    assert not set(carved["validation"]["text"]) & set(carved["train"]["text"])
    with pytest.raises(ValueError, match="has validation rows"):
        with_validation_split(carved, 0.2, seed=0, source="dsd.csv")


def test_a_manifest_split_value_that_is_no_split_name_is_an_error_not_dropped_rows(tmp_path):
    import csv

    from turbo_hf.arguments import ManifestArguments
    from turbo_hf.experiment import run_manifest
    from turbo_hf.testing.synthetic import make_synthetic_corpus

    manifest = make_synthetic_corpus(tmp_path / "corpus", layout="manifest", n_per_class=2, seed=0)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[-1]["split"] = "tset"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    training_args = TurboTrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True)
    with pytest.raises(
        ValueError, match=rf"{manifest.name}:{len(rows) + 1}: split 'tset' is not a split name"
    ):
        run_manifest(
            ModelArguments(), DataArguments(), ManifestArguments(manifest=str(manifest)), training_args
        )


def _turbo_hyperparameters() -> list[dataclasses.Field]:
    inherited = {config_field.name for config_field in dataclasses.fields(PreTrainedConfig)}
    return [
        config_field
        for config_field in dataclasses.fields(TurboConfig)
        if config_field.name not in inherited and config_field.name not in TurboConfig.sub_configs_defaults
    ]


def test_every_turbo_config_hyperparameter_is_a_recipe_argument_with_its_default_and_help(tmp_path):
    own = _turbo_hyperparameters()
    assert {"loss_mode", "ce_weight", "temperature", "dropout", "encoder_layerdrop"} <= {f.name for f in own}
    arguments = {argument.name: argument for argument in dataclasses.fields(ModelArguments)}
    for config_field in own:
        argument = arguments[config_field.name]
        assert argument.default == config_field.default, config_field.name
        assert len(argument.metadata["help"]) > len("TurboConfig: ") + 10, config_field.name  # docstring text
    assert ModelArguments().turbo_config_kwargs() == {f.name: f.default for f in own}
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    model_args, *_ = parse_recipe_arguments(
        types,
        {},
        ["--output_dir", str(tmp_path), "--encoder_layerdrop", "0.1", "--no_gather_across_processes"],
    )
    kwargs = model_args.turbo_config_kwargs()
    assert kwargs["encoder_layerdrop"] == 0.1 and kwargs["gather_across_processes"] is False
    config = TurboConfig(**kwargs)
    assert config.encoder_layerdrop == 0.1 and config.audio_config.layerdrop == 0.1


def test_a_config_field_without_a_flag_type_is_a_yaml_argument():
    @strict
    class WeightedConfig(TurboConfig):
        """
        Args:
            class_weights (`list[float]` or `str`, *optional*):
                Cross-entropy weight of each class, or "balanced".
        """

        class_weights: list[float] | str | None = None

    @with_config_fields(WeightedConfig)
    class Arguments:
        pass

    (parsed,) = HfArgumentParser(Arguments).parse_args_into_dataclasses(["--class_weights", "[1.0, 2.5]"])
    assert ModelArguments.turbo_config_kwargs(parsed)["class_weights"] == [1.0, 2.5]
    (balanced,) = HfArgumentParser(Arguments).parse_args_into_dataclasses(["--class_weights", "balanced"])
    assert ModelArguments.turbo_config_kwargs(balanced)["class_weights"] == "balanced"
    help_text = {argument.name: argument.metadata["help"] for argument in dataclasses.fields(Arguments)}
    assert help_text["class_weights"].startswith("WeightedConfig: Cross-entropy weight of each class")
