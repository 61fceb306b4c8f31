"""The recipes' arguments are refused at parsing, before any data or encoder is loaded: runs that would
train no step, settings the optimizer or sampler would refuse late, argument files that do not parse or
hold values of the wrong type, a push that cannot happen, and recipe defaults that contradict what the
user asked for."""

import json
import logging

import huggingface_hub
import pytest

from turbo_hf.arguments import (
    RECIPE_TRAINING_DEFAULTS,
    DataArguments,
    IemocapArguments,
    ManifestArguments,
    ModelArguments,
    parse_recipe_arguments,
)
from turbo_hf.trainer import TurboTrainingArguments

SER_TYPES = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
DSD_TYPES = (ModelArguments, DataArguments, ManifestArguments, TurboTrainingArguments)
SER_DEFAULTS = {**RECIPE_TRAINING_DEFAULTS, "metric_for_best_model": "ua"}


def _parse(tmp_path, *argv, defaults=SER_DEFAULTS):
    return parse_recipe_arguments(SER_TYPES, defaults, ["--output_dir", str(tmp_path / "run"), *argv])


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- runs that train no step -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--num_train_epochs", "0"], r"no training steps: --num_train_epochs 0"),
        (["--num_train_epochs", "-2"], r"no training steps: --num_train_epochs -2"),
        # transformers 5.24 counts epochs only for a negative max_steps: 0 gives one step at rate 0.
        (["--max_steps", "0"], r"no training steps: --max_steps 0"),
        (["--max_steps", "0", "--num_train_epochs", "0"], r"no training steps: --max_steps 0"),
    ],
)
def test_a_run_that_would_train_no_step_is_refused_at_parsing(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        _parse(tmp_path, *argv)


def test_max_steps_wins_over_zero_epochs_and_fractional_epochs_train(tmp_path):
    *_, args = _parse(tmp_path, "--num_train_epochs", "0", "--max_steps", "3")
    assert args.max_steps == 3
    *_, args = _parse(tmp_path, "--num_train_epochs", "0.5")
    assert args.num_train_epochs == 0.5


# --- training settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--learning_rate", "nan"], r"--learning_rate must be a finite number > 0, got nan"),
        (["--learning_rate", "0"], r"--learning_rate must be a finite number > 0, got 0"),
        (
            ["--encoder_learning_rate=-1e-5"],
            r"--encoder_learning_rate must be None or a finite number >= 0",
        ),
        (["--weight_decay", "-0.1"], r"--weight_decay must be a finite number >= 0, got -0.1"),
        (
            ["--per_device_train_batch_size", "0"],
            r"--per_device_train_batch_size must be an integer >= 1, got 0",
        ),
        (["--per_device_eval_batch_size", "-4"], r"--per_device_eval_batch_size must be an integer >= 1"),
        (["--gradient_accumulation_steps", "0"], r"--gradient_accumulation_steps must be an integer >= 1"),
        (["--seed", "-1"], r"--seed must be an integer in \[0, 2\*\*32 - 1\], got -1"),
        (["--seed", str(2**32)], r"--seed must be an integer in \[0, 2\*\*32 - 1\]"),
        (["--data_seed", "-3"], r"--data_seed must be None or an integer in \[0, 2\*\*32 - 1\]"),
        (["--warmup_steps", "-0.1"], r"--warmup_steps must be .* got -0.1"),
        (["--warmup_steps", "2.5"], r"--warmup_steps must be .*a whole number of steps.* got 2.5"),
        (["--adam_beta2", "1"], r"--adam_beta2 must be a finite number in \[0, 1\), got 1"),
        (["--max_grad_norm", "inf"], r"--max_grad_norm must be a finite number >= 0, got inf"),
        (["--dataloader_num_workers", "-1"], r"--dataloader_num_workers must be an integer >= 0"),
    ],
)
def test_training_settings_are_checked_at_parsing_naming_the_flag(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        _parse(tmp_path, *argv)


def test_the_paper_and_demo_settings_pass_the_training_rules(tmp_path):
    *_, args = _parse(tmp_path, "--warmup_steps", "0.1", "--encoder_learning_rate", "0", "--seed", "0")
    assert args.warmup_steps == 0.1 and args.encoder_learning_rate == 0.0
    assert (
        TurboTrainingArguments(output_dir=str(tmp_path), warmup_steps=10, report_to="none").warmup_steps == 10
    )


# --- argument files ----------------------------------------------------------------------------------


def test_yaml_exponent_numbers_read_as_strings_become_the_field_type(tmp_path):
    # PyYAML (YAML 1.1) reads 2e-5 and 1e-2 as strings: they must still be numbers for the optimizer.
    path = _write(
        tmp_path, "run.yaml", f"output_dir: {tmp_path / 'run'}\nlearning_rate: 2e-5\ntemperature: 5e-2\n"
    )
    model_args, *_, training_args = parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [path])
    assert training_args.learning_rate == 2e-5 and isinstance(training_args.learning_rate, float)
    assert model_args.temperature == 0.05
    # ... and also when command-line flags follow the file.
    *_, training_args = parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [path, "--seed", "3"])
    assert training_args.learning_rate == 2e-5 and training_args.seed == 3


@pytest.mark.parametrize(
    "values,message",
    [
        ({"max_steps": "two"}, r"cfg.json: 'max_steps': 'two' is not an integer"),
        ({"max_steps": 2.5}, r"cfg.json: 'max_steps': 2.5 is not an integer"),
        ({"learning_rate": "fast"}, r"cfg.json: 'learning_rate': 'fast' is not a number"),
        ({"learning_rate": True}, r"cfg.json: 'learning_rate': True is not a number"),
        ({"bf16": "maybe"}, r"cfg.json: 'bf16': 'maybe' is not true or false"),
        ({"max_duration": [1, 2]}, r"cfg.json: 'max_duration': \[1, 2\] is not a number"),
        ({"per_device_train_batch_size": None}, r"cfg.json: 'per_device_train_batch_size': None is not an"),
        ({"lr_scheduler_type": "linearr"}, r"cfg.json: 'lr_scheduler_type': 'linearr' is not one of"),
        ({"eval_strategy": 3}, r"cfg.json: 'eval_strategy': 3 is not one of"),
    ],
)
def test_argument_file_values_are_checked_against_their_field_type_naming_file_and_key(
    tmp_path, values, message
):
    path = _write(tmp_path, "cfg.json", json.dumps({"output_dir": str(tmp_path / "run"), **values}))
    with pytest.raises(ValueError, match=message):
        parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [path])
    with pytest.raises(ValueError, match=message):  # the same with flags after the file
        parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [path, "--seed", "1"])


def test_argument_file_values_the_command_line_would_accept_are_converted(tmp_path):
    values = {
        "output_dir": str(tmp_path / "run"),
        "fold": 3,  # a str field: the command line gives "3"
        "max_steps": "4",
        "bf16": "false",
        "num_train_epochs": 2,
        "report_to": ["none"],  # list-valued fields take lists
        "class_weights": [1, 2, 3, 4],  # a TurboConfig field read as a YAML value
        "resume_from_checkpoint": True,  # kept: `true` means the newest checkpoint
        "hub_model_id": None,
    }
    path = _write(tmp_path, "cfg.json", json.dumps(values))
    model_args, _, iemocap_args, training_args = parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [path])
    assert iemocap_args.fold == "3" and training_args.max_steps == 4 and training_args.bf16 is False
    assert training_args.num_train_epochs == 2.0 and training_args.resumes_last
    assert model_args.turbo_config_kwargs()["class_weights"] == [1.0, 2.0, 3.0, 4.0]


def test_an_argument_file_that_does_not_parse_is_named_with_line_and_column(tmp_path):
    path = _write(tmp_path, "comma.json", '{\n  "output_dir": "out",\n  "seed": 1,\n}\n')
    with pytest.raises(ValueError, match=r"comma.json:4:1: not valid JSON"):
        parse_recipe_arguments(SER_TYPES, {}, [path])
    path = _write(tmp_path, "bad.yaml", "output_dir: out\nseed: [1, 2\n")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        parse_recipe_arguments(SER_TYPES, {}, [path])


def test_a_missing_argument_file_is_a_named_error(tmp_path):
    with pytest.raises(ValueError, match=r"argument file .*nope.json does not exist"):
        parse_recipe_arguments(SER_TYPES, {}, [str(tmp_path / "nope.json")])
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ValueError, match=r"argument file .*folder.yaml is a folder"):
        parse_recipe_arguments(SER_TYPES, {}, [str(tmp_path / "folder.yaml")])


# --- push_to_hub -------------------------------------------------------------------------------------


@pytest.fixture
def online_without_token(monkeypatch, tmp_path):
    """No token anywhere, and offline mode off: nothing in these tests reaches the network."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_tokens"))


def test_push_to_hub_in_offline_mode_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match=r"--push_to_hub: .*offline mode \(HF_HUB_OFFLINE"):
        _parse(tmp_path, "--push_to_hub", "true", "--hub_model_id", "me/x", "--hub_token", "hf_x")


def test_push_to_hub_without_a_token_is_refused_before_training(tmp_path, online_without_token):
    with pytest.raises(ValueError, match=r"--push_to_hub: .*no Hugging Face token"):
        _parse(tmp_path, "--push_to_hub", "true", "--hub_model_id", "me/x")


def test_push_to_hub_with_an_invalid_repo_id_is_refused_before_training(tmp_path, online_without_token):
    with pytest.raises(ValueError, match=r"--push_to_hub: .*'me/x/y' is not a Hub repository id"):
        _parse(tmp_path, "--push_to_hub", "true", "--hub_model_id", "me/x/y", "--hub_token", "hf_x")


def test_push_to_hub_with_a_token_and_a_valid_repo_id_parses(tmp_path, online_without_token):
    *_, args = _parse(tmp_path, "--push_to_hub", "true", "--hub_model_id", "me/x", "--hub_token", "hf_x")
    assert args.push_to_hub and args.push_repo_id == "me/x"
    # Without --hub_model_id the repository is named after output_dir.
    *_, args = _parse(tmp_path, "--push_to_hub", "true", "--hub_token", "hf_x")
    assert args.push_repo_id == "run"


# --- recipe defaults that give way -------------------------------------------------------------------


def test_eval_strategy_no_turns_the_recipe_default_best_checkpoint_off_with_a_note(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="turbo_hf"):
        *_, args = _parse(tmp_path, "--eval_strategy", "no")
    assert args.load_best_model_at_end is False and args.metric_for_best_model is None
    assert "load_best_model_at_end" in caplog.text and "recipe's default" in caplog.text
    # The same from an argument file.
    path = _write(tmp_path, "noeval.json", json.dumps({"output_dir": str(tmp_path), "eval_strategy": "no"}))
    *_, args = parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [path])
    assert args.load_best_model_at_end is False


def test_an_explicit_best_checkpoint_without_evaluation_is_an_error_naming_both_flags(tmp_path):
    with pytest.raises(ValueError, match=r"load_best_model_at_end"):
        _parse(tmp_path, "--eval_strategy", "no", "--load_best_model_at_end", "true")


def test_mismatched_strategies_name_the_recipe_default_that_needs_them_to_match(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"--eval_strategy steps .*--save_strategy epoch \(the recipe's default\).*"
        r"load_best_model_at_end=True \(the recipe's default\).*--load_best_model_at_end false",
    ):
        _parse(tmp_path, "--eval_strategy", "steps")


def test_early_stopping_without_evaluation_is_refused_at_parsing(tmp_path):
    with pytest.raises(ValueError, match=r"--early_stopping_patience 2 needs evaluations"):
        _parse(tmp_path, "--eval_strategy", "no", "--early_stopping_patience", "2")
    with pytest.raises(ValueError, match=r"--early_stopping_patience 2 needs"):
        TurboTrainingArguments(output_dir=str(tmp_path), early_stopping_patience=2, report_to="none")


def test_the_iemocap_sessions_are_a_recipe_flag_and_a_file_key(tmp_path):
    _, _, iemocap_args, _ = _parse(tmp_path)
    assert iemocap_args.sessions == [1, 2, 3, 4, 5]
    _, _, iemocap_args, _ = _parse(tmp_path, "--sessions", "1", "2", "4")
    assert iemocap_args.sessions == [1, 2, 4]
    path = tmp_path / "ser.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path / "run"), "sessions": [2, 3]}))
    assert parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [str(path)])[2].sessions == [2, 3]


def test_the_push_repository_of_output_dir_dot_is_the_folders_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = TurboTrainingArguments(output_dir=".", report_to="none", use_cpu=True)
    assert args.push_repo_id == tmp_path.name


def test_yaml_no_for_a_strategy_is_the_word_not_a_bool(tmp_path):
    path = tmp_path / "ser.yaml"
    path.write_text(f"output_dir: {tmp_path / 'run'}\neval_strategy: no\nsave_strategy: no\n")
    *_, training_args = parse_recipe_arguments(SER_TYPES, SER_DEFAULTS, [str(path)])
    assert training_args.eval_strategy == "no" and training_args.save_strategy == "no"
